/**
 * ClickHouse's backup as the engine describes it (databases/clickhouse/backup.ts), on plain data,
 * and the jobs' script run with stand-ins for clickhouse-client and clickhouse-local that record
 * what they were given. The statements themselves run on a real engine in
 * test/engines/clickhouse-backup.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { BackupJob, BackupSettings } from '../databases/backup.ts';
import { BACKUP_ENV, backupLocation, collectionConfig, JOB_FILES, objectStoreUrl } from '../databases/clickhouse/backup.ts';
import { clickhouse } from '../databases/clickhouse/index.ts';
import { CLIENT_CA_PATH } from '../databases/connection.ts';
import { engineSpec, type Environment } from '../databases/engine.ts';

const SECRET_STORE: BackupSettings['objectStore'] = {
  endpoint: 'https://s3.eu-west-1.amazonaws.com',
  bucket: 'allixios-backups',
  prefix: 'prod',
  region: 'eu-west-1',
  forcePathStyle: false,
  credentials: { kind: 'secret', secretName: 'allixios-backups', accessKeyIdKey: 'access-key-id', secretAccessKeyKey: 'secret-access-key' },
};
const BACKUP: BackupSettings = {
  objectStore: SECRET_STORE,
  path: 'prod/clickhouse',
  schedules: { full: '0 3 * * 0', incremental: '0 3 * * 1-6' },
  retention: { count: 4, days: 35 },
};

function spec(environment: Environment, options: { tls?: boolean; backup?: BackupSettings | null } = {}) {
  const sizing = clickhouse.sizing[environment];
  const backup = options.backup === undefined ? BACKUP : options.backup;
  return engineSpec(clickhouse, {
    environment,
    version: clickhouse.defaultVersion,
    replicas: sizing.replicas ?? 1,
    storage: sizing.storage,
    resources: sizing.resources,
    options: clickhouse.optionsSchema.parse({}),
    tls: options.tls ?? false,
    ...(backup ? { backup } : {}),
  });
}

const job = (name: string, options: Parameters<typeof spec>[1] = {}) => spec('prod', options).backup!.jobs.find((candidate) => candidate.name === name)!;

describe('the backup jobs', () => {
  it('are described only when the stack backs up, with the server’s named collection beside them', () => {
    const off = spec('prod', { backup: null });
    expect(off.backup).toBeUndefined();
    expect(off.configFiles.map((file) => file.mountPath)).not.toContain('/etc/clickhouse-server/config.d/backup.xml');
    const on = spec('prod');
    expect(on.backup!.jobs.map((candidate) => [candidate.name, candidate.schedule])).toEqual([
      ['full', '0 3 * * 0'],
      ['incremental', '0 3 * * 1-6'],
    ]);
    expect(on.configFiles.find((file) => file.mountPath === '/etc/clickhouse-server/config.d/backup.xml')?.content).toBe(collectionConfig('secret'));
    // The server writes to the store itself: nothing to upload
    expect(on.backup!.jobs.every((candidate) => candidate.upload === undefined)).toBe(true);
  });

  it('give the members the store’s URL as a literal and its keys from the stack’s Secret, which the collection reads with from_env', () => {
    const { memberEnv } = spec('prod').backup!;
    expect(memberEnv).toEqual({
      [BACKUP_ENV.url]: 'https://allixios-backups.s3.eu-west-1.amazonaws.com/prod/clickhouse/',
      [BACKUP_ENV.accessKeyId]: { objectStore: 'accessKeyId' },
      [BACKUP_ENV.secretAccessKey]: { objectStore: 'secretAccessKey' },
    });
    const xml = collectionConfig('secret');
    for (const variable of Object.values(BACKUP_ENV)) expect(xml).toContain(`from_env="${variable}" overridable="false"`);
  });

  it('under workload identity carry no keys: the collection uses the pod’s identity, which the jobs allow their queries to use', () => {
    const backup = {
      ...BACKUP,
      objectStore: { ...SECRET_STORE, credentials: { kind: 'workloadIdentity' as const, serviceAccountAnnotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::1:role/b' } } },
    };
    const described = spec('prod', { backup });
    expect(described.backup!.memberEnv).toEqual({ [BACKUP_ENV.url]: 'https://allixios-backups.s3.eu-west-1.amazonaws.com/prod/clickhouse/' });
    const xml = collectionConfig('workloadIdentity');
    expect(xml).not.toContain('access_key_id');
    expect(xml).toContain('<use_environment_credentials overridable="false">1</use_environment_credentials>');
    const full = described.backup!.jobs[0]!;
    expect(full.env.CLICKHOUSE_CLIENT_OPTIONS).toBe('--s3_allow_server_credentials_in_user_queries=1');
    expect(full.env.CLICKHOUSE_LOCAL_OPTIONS).toBe('--s3_allow_server_credentials_in_user_queries=1');
    expect(collectionConfig('secret')).toContain('<use_environment_credentials overridable="false">0</use_environment_credentials>');
  });

  it('log in as allixios_backup with its password from the Secret, and put no credential in a statement or an argument', () => {
    const full = job('full');
    expect(full.env.CLICKHOUSE_USER).toBe('allixios_backup');
    expect(full.env.CLICKHOUSE_PASSWORD).toEqual({ secret: 'backup-password' });
    expect(full.env.CLICKHOUSE_BACKUP_FULL_SQL).toBe("BACKUP DATABASE allixios TO S3(allixios_backups, '{id}')");
    expect(job('incremental').env.CLICKHOUSE_BACKUP_INCREMENTAL_SQL).toBe(
      "BACKUP DATABASE allixios TO S3(allixios_backups, '{id}') SETTINGS base_backup = S3(allixios_backups, '{base}')",
    );
    // Every value is a literal setting, a secret reference, or an object-store reference
    const references = Object.entries(full.env).filter(([, value]) => typeof value !== 'string');
    expect(references.map(([name]) => name).sort()).toEqual([BACKUP_ENV.accessKeyId, 'CLICKHOUSE_PASSWORD', BACKUP_ENV.secretAccessKey].sort());
    expect(full.command).toEqual(['sh', JOB_FILES.script, 'full']);
    const script = readFileSync(join(clickhouse.directory, 'config/clickhouse-backup.sh'), 'utf8');
    expect(script).not.toMatch(/--password/);
    expect(script).not.toMatch(/\$\{?CLICKHOUSE_PASSWORD(?!\+set\})/);
  });

  it('connect over TLS on a TLS stack, verifying the server with the stack’s CA', () => {
    const full = job('full', { tls: true });
    expect(full.env.CLICKHOUSE_PORT).toBe('9440');
    expect(full.env.CLICKHOUSE_CLIENT_OPTIONS).toBe('--secure');
    const client = full.configFiles!.find((file) => file.mountPath === JOB_FILES.client)!.content;
    expect(client).toContain(`<caConfig>${CLIENT_CA_PATH}</caConfig>`);
    expect(client).toContain('<name>RejectCertificateHandler</name>');
    expect(job('full').env.CLICKHOUSE_PORT).toBe('9000');
    expect(job('full').configFiles!.find((file) => file.mountPath === JOB_FILES.client)!.content).not.toContain('openSSL');
  });

  it('state what is lost, and refuse settings without a schedule, naming the key', () => {
    expect(spec('prod').backup!.recoveryPoint).toMatch(/up to one interval of the schedules/);
    expect(() => spec('prod', { backup: { ...BACKUP, schedules: { full: '0 3 * * 0' } } })).toThrow(
      'clickhouse: backup.schedules.incremental: expected a cron schedule for the incremental backup job, got {"full":"0 3 * * 0"}',
    );
  });
});

describe('the store’s URL and a backup’s location', () => {
  it('is virtual-hosted, or path-style where the store asks for it, with the engine’s prefix', () => {
    expect(objectStoreUrl(SECRET_STORE, 'prod/clickhouse')).toBe('https://allixios-backups.s3.eu-west-1.amazonaws.com/prod/clickhouse/');
    expect(objectStoreUrl({ endpoint: 'http://minio.backups:9000/', bucket: 'b', forcePathStyle: true }, '/staging/clickhouse/')).toBe(
      'http://minio.backups:9000/b/staging/clickhouse/',
    );
  });

  it('takes ids the jobs write and nothing else', () => {
    expect(backupLocation('incremental/20261209T030000Z')).toBe("S3(allixios_backups, 'incremental/20261209T030000Z')");
    for (const bad of ['full', "full/x') , S3('http://elsewhere", '../full/20261209T030000Z']) expect(() => backupLocation(bad)).toThrow(/expected a backup id/);
  });
});

describe('the jobs’ script', () => {
  const work = mkdtempSync(join(tmpdir(), 'allixios-clickhouse-backup-script-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  /** Runs the script with stand-ins that record their arguments; clickhouse-local answers `latest`. */
  function run(candidate: BackupJob, options: { latest?: string; env?: Record<string, string | undefined> } = {}) {
    const bin = mkdtempSync(join(work, 'bin-'));
    const log = join(bin, 'calls');
    const standIn = (name: string, output: string) => {
      writeFileSync(join(bin, `${name}.out`), output);
      writeFileSync(join(bin, name), `#!/bin/sh\nfor a in "$@"; do printf '%s\\n' "$a" >> '${log}'; done\necho --- >> '${log}'\ncat '${join(bin, `${name}.out`)}'\n`);
      chmodSync(join(bin, name), 0o755);
    };
    standIn('clickhouse', options.latest ?? '');
    standIn('clickhouse-client', 'operation-id\tBACKUP_CREATED\n');
    const script = join(bin, 'clickhouse-backup.sh');
    writeFileSync(script, candidate.configFiles!.find((file) => file.mountPath === JOB_FILES.script)!.content);
    const literals = Object.fromEntries(Object.entries(candidate.env).flatMap(([name, value]) => (typeof value === 'string' ? [[name, value]] : [])));
    const env: Record<string, string> = { PATH: `${bin}:${process.env.PATH}`, ...literals, CLICKHOUSE_PASSWORD: 'the-backup-password' };
    for (const [name, value] of Object.entries(options.env ?? {})) {
      if (value === undefined) delete env[name];
      else env[name] = value;
    }
    const result = spawnSync('sh', [script, ...candidate.command.slice(2)], { env, encoding: 'utf8' });
    let calls = '';
    try {
      calls = readFileSync(log, 'utf8');
    } catch {
      // no stand-in was called
    }
    return { status: result.status, stderr: result.stderr, calls: calls.split('---\n').filter(Boolean) };
  }

  it('takes a full backup with a fresh id, as allixios_backup, its password in the environment only', () => {
    const result = run(job('full'));
    expect(result.status, result.stderr).toBe(0);
    expect(result.calls).toHaveLength(1);
    const args = result.calls[0]!.trim().split('\n');
    expect(args.slice(0, 8)).toEqual(['--config-file', JOB_FILES.client, '--host', 'clickhouse', '--port', '9000', '--user', 'allixios_backup']);
    expect(args.at(-1)).toMatch(/^BACKUP DATABASE allixios TO S3\(allixios_backups, 'full\/\d{8}T\d{6}Z'\)$/);
    expect(args).toContain('--receive_timeout');
    expect(result.calls.join('')).not.toContain('the-backup-password');
  });

  it('takes an incremental backup on the latest full one that clickhouse-local finds in the store', () => {
    const result = run(job('incremental'), { latest: 'full/20261206T030000Z' });
    expect(result.status, result.stderr).toBe(0);
    const [local, client] = result.calls.map((call) => call.trim().split('\n'));
    expect(local!.slice(0, 3)).toEqual(['local', '--config-file', JOB_FILES.collection]);
    expect(local!.at(-1)).toContain("FROM s3(allixios_backups, filename = 'full/*/.backup', format = 'One')");
    expect(client!.at(-1)).toMatch(
      /^BACKUP DATABASE allixios TO S3\(allixios_backups, 'incremental\/\d{8}T\d{6}Z'\) SETTINGS base_backup = S3\(allixios_backups, 'full\/20261206T030000Z'\)$/,
    );
  });

  it('takes a full backup when the store has none yet', () => {
    const result = run(job('incremental'), { latest: '' });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toContain('no full backup in the store yet: taking a full one');
    expect(result.calls.at(-1)!.trim().split('\n').at(-1)).toMatch(/^BACKUP DATABASE allixios TO S3\(allixios_backups, 'full\/\d{8}T\d{6}Z'\)$/);
  });

  it('refuses a base whose name is not an id it writes, and sends nothing to the server', () => {
    const result = run(job('incremental'), { latest: "full/x') , S3('http://elsewhere/" });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("the latest full backup's name is not an id this job writes");
    expect(result.calls).toHaveLength(1);
  });

  it('stops without the password, and on a kind it does not know', () => {
    const missing = run(job('full'), { env: { CLICKHOUSE_PASSWORD: undefined } });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain("CLICKHOUSE_PASSWORD (allixios_backup's password) is not set");
    expect(missing.calls).toEqual([]);
    const unknown = run({ ...job('full'), command: ['sh', JOB_FILES.script, 'differential'] });
    expect(unknown.status).toBe(2);
  });
});
