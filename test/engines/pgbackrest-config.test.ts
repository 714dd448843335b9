/**
 * PostgreSQL's backups (databases/postgresql/backup.ts): the pgbackrest.conf every host reads,
 * rendered from the stack's backup settings, Patroni's additions when backups are on, and the
 * BackupSpec describe() returns. No pgBackRest runs here (test/engines/pgbackrest.test.ts and
 * `npm run drill:pgbackrest` run one): what the files say is checked against the options
 * pgBackRest 2.45 documents, and that nothing secret is in any of them.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { BackupSettings, ObjectStoreSpec } from '../../databases/backup.ts';
import { engineSpec, type EngineSettings, type EngineSpec } from '../../databases/engine.ts';
import {
  AGENT_CLIENT_COMMON_NAME,
  AGENT_PORT,
  agentHealthCommand,
  archiveParameters,
  archiveQueueMax,
  BACKUP_CIPHER_SECRET,
  backupScript,
  BackupSettingsError,
  PGBACKREST_CONFIG_PATH,
  PGBACKREST_VARIABLES,
  pgbackrestConf,
  pgbackrestConfig,
  STANZA,
  type PgbackrestConfig,
  type PgbackrestHost,
  type PgbackrestRepository,
} from '../../databases/postgresql/backup.ts';
import { postgresql } from '../../databases/postgresql/index.ts';
import { kubernetesPatroniConfig, renderPatroniConfig } from '../../databases/postgresql/patroni.ts';

const objectStore = (overrides: Partial<ObjectStoreSpec> = {}): ObjectStoreSpec => ({
  endpoint: 'https://s3.eu-west-1.amazonaws.com',
  bucket: 'allixios-backups',
  prefix: 'prod',
  region: 'eu-west-1',
  forcePathStyle: false,
  credentials: { kind: 'secret', secretName: 'allixios-backups', accessKeyIdKey: 'access-key-id', secretAccessKeyKey: 'secret-access-key' },
  ...overrides,
});

const backupSettings = (store: Partial<ObjectStoreSpec> = {}): BackupSettings => ({
  objectStore: objectStore(store),
  path: 'prod/postgresql',
  schedules: { full: '0 1 * * 0', diff: '0 1 * * 1-6' },
  retention: { count: 4, days: 30 },
});

const server = { data: '/var/lib/postgresql/18/docker', socket: '/var/run/postgresql', port: 5432 };
const member: PgbackrestHost = { role: 'member', server, paths: { lock: '/tmp/pgbackrest', spool: '/var/lib/postgresql/pgbackrest-spool' }, archiveQueueMax: '25GB' };
const agent: PgbackrestHost = {
  role: 'agent',
  server,
  paths: { lock: '/tmp/pgbackrest' },
  address: '*',
  port: AGENT_PORT,
  tlsDirectory: '/etc/postgresql/tls',
  clientCommonName: 'postgresql',
};
const repositoryHost: PgbackrestHost = {
  role: 'repository',
  members: 3,
  server,
  agent: { port: AGENT_PORT, tlsDirectory: '/etc/postgresql/tls' },
  paths: { lock: '/tmp/pgbackrest' },
};
const restore: PgbackrestHost = { role: 'restore', data: '/restore/data', paths: { lock: '/restore/lock', spool: '/restore/spool' } };
const s3: PgbackrestRepository = { kind: 'objectStore', backup: backupSettings() };

/** Options pgBackRest 2.45 documents (`pgbackrest help <command> <option>`), as far as the rendering uses them. */
const DOCUMENTED_OPTIONS = new Set([
  'repo1-type',
  'repo1-path',
  'repo1-s3-bucket',
  'repo1-s3-endpoint',
  'repo1-s3-region',
  'repo1-s3-uri-style',
  'repo1-s3-key-type',
  'repo1-storage-port',
  'repo1-gcs-bucket',
  'repo1-gcs-key-type',
  'repo1-cipher-type',
  'repo1-retention-full-type',
  'repo1-retention-full',
  'compress-type',
  'process-max',
  'log-level-file',
  'log-level-console',
  'log-level-stderr',
  'lock-path',
  'archive-async',
  'spool-path',
  'archive-push-queue-max',
  'start-fast',
  'backup-standby',
  'tls-server-address',
  'tls-server-port',
  'tls-server-cert-file',
  'tls-server-key-file',
  'tls-server-ca-file',
  'tls-server-auth',
]);
const INDEXED = /^pg\d+-(path|socket-path|port|host|host-type|host-port|host-cert-file|host-key-file|host-ca-file)$/;

/** pgbackrest.conf read back: sections of `key=value`. */
function readConf(text: string): Record<string, Record<string, string>> {
  const sections: Record<string, Record<string, string>> = {};
  let current: Record<string, string> | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) current = sections[header[1]!] = {};
    else {
      const [key, ...value] = line.split('=');
      current![key!] = value.join('=');
    }
  }
  return sections;
}

const everyOption = (config: PgbackrestConfig) => ({ ...config.global, ...config.stanza });

describe('pgbackrest.conf, rendered from the backup settings', () => {
  it('names the stanza allixios and writes the file pgBackRest reads back as rendered', () => {
    for (const host of [member, agent, repositoryHost, restore]) {
      const config = pgbackrestConfig(s3, host);
      expect(readConf(pgbackrestConf(config)), host.role).toEqual({ global: config.global, [STANZA]: config.stanza });
    }
    expect(STANZA).toBe('allixios');
    expect(PGBACKREST_CONFIG_PATH).toBe('/etc/pgbackrest/pgbackrest.conf');
  });

  it('uses only options pgBackRest 2.45 documents', () => {
    for (const repository of [s3, { kind: 'posix', path: '/srv/repo', retention: { count: 4, days: 30 } } as const]) {
      for (const host of [member, agent, repositoryHost, restore]) {
        const unknown = Object.keys(everyOption(pgbackrestConfig(repository, host))).filter((key) => !DOCUMENTED_OPTIONS.has(key) && !INDEXED.test(key));
        expect(unknown, `${repository.kind} ${host.role}`).toEqual([]);
      }
    }
  });

  it('puts the repository in the S3 bucket under the engine path, encrypted, kept by age, compressed with zst', () => {
    const { global } = pgbackrestConfig(s3, repositoryHost);
    expect(global).toMatchObject({
      'repo1-type': 's3',
      'repo1-s3-bucket': 'allixios-backups',
      'repo1-s3-endpoint': 's3.eu-west-1.amazonaws.com',
      'repo1-s3-region': 'eu-west-1',
      'repo1-s3-key-type': 'shared',
      'repo1-path': '/prod/postgresql',
      'repo1-cipher-type': 'aes-256-cbc',
      'repo1-retention-full-type': 'time',
      'repo1-retention-full': '30',
      'compress-type': 'zst',
      'process-max': '2',
    });
    // Host-style addressing (pgBackRest's default) unless the store needs paths; the default port.
    expect(global).not.toHaveProperty('repo1-s3-uri-style');
    expect(global).not.toHaveProperty('repo1-storage-port');
    // WAL retention follows the full backups kept: every moment since the oldest one can be recovered.
    expect(global).not.toHaveProperty('repo1-retention-archive');
    // Only the backup jobs expire (after each backup): the other hosts carry no retention.
    for (const host of [member, agent, restore])
      expect(
        Object.keys(pgbackrestConfig(s3, host).global).filter((key) => key.includes('retention')),
        host.role,
      ).toEqual([]);
  });

  it("addresses a MinIO by path and on its port, and follows the object store's credentials: shared keys, web identity, or GCS's service account", () => {
    const minio = pgbackrestConfig({ kind: 'objectStore', backup: backupSettings({ endpoint: 'https://minio.storage.svc:9000', forcePathStyle: true }) }, member).global;
    expect(minio).toMatchObject({ 'repo1-s3-endpoint': 'minio.storage.svc', 'repo1-storage-port': '9000', 'repo1-s3-uri-style': 'path' });
    const irsa = pgbackrestConfig({ kind: 'objectStore', backup: backupSettings({ credentials: { kind: 'workloadIdentity', serviceAccountAnnotations: {} } }) }, member).global;
    expect(irsa['repo1-s3-key-type']).toBe('web-id');
    const gcs = pgbackrestConfig(
      { kind: 'objectStore', backup: backupSettings({ endpoint: 'https://storage.googleapis.com', credentials: { kind: 'workloadIdentity', serviceAccountAnnotations: {} } }) },
      member,
    ).global;
    expect(gcs).toMatchObject({ 'repo1-type': 'gcs', 'repo1-gcs-bucket': 'allixios-backups', 'repo1-gcs-key-type': 'auto', 'repo1-path': '/prod/postgresql' });
    expect(Object.keys(gcs).filter((key) => key.startsWith('repo1-s3'))).toEqual([]);
  });

  it('refuses object-store settings pgBackRest cannot use, naming the key', () => {
    const render = (store: Partial<ObjectStoreSpec>, path = 'prod/postgresql') => pgbackrestConfig({ kind: 'objectStore', backup: { ...backupSettings(store), path } }, member);
    expect(() => render({ endpoint: 'http://minio:9000' })).toThrow(BackupSettingsError);
    expect(() => render({ endpoint: 'http://minio:9000' })).toThrow(
      /allixios:backups\.objectStore\.endpoint: expected an https:\/\/ URL .*pgBackRest speaks HTTPS only.*got "http:\/\/minio:9000"/,
    );
    expect(() => render({ endpoint: 's3.amazonaws.com' })).toThrow(/objectStore\.endpoint: expected an https:\/\/ URL/);
    expect(() => render({ endpoint: 'https://minio/bucket' })).toThrow(/takes no path/);
    expect(() => render({}, '/prod/postgresql')).toThrow(/without a leading or trailing slash/);
    expect(() => pgbackrestConfig({ kind: 'objectStore', backup: { ...backupSettings(), retention: { count: 4, days: 0 } } }, repositoryHost)).toThrow(
      /allixios:backups\.retention\.days: expected a whole number of days of at least 1, got 0/,
    );
  });

  it('has a posix variant: the same settings, a local directory for the object store (the drill)', () => {
    const posix = pgbackrestConfig({ kind: 'posix', path: '/srv/repository', retention: { count: 4, days: 30 } }, member);
    const fromS3 = pgbackrestConfig(s3, member);
    expect(posix.global).toMatchObject({ 'repo1-type': 'posix', 'repo1-path': '/srv/repository' });
    const withoutRepository = (config: PgbackrestConfig) => Object.fromEntries(Object.entries(config.global).filter(([key]) => !/^repo1-(type|path|s3-)/.test(key)));
    expect(withoutRepository(posix)).toEqual(withoutRepository(fromS3));
    expect(posix.stanza).toEqual(fromS3.stanza);
    expect(() => pgbackrestConfig({ kind: 'posix', path: 'repository', retention: { count: 4, days: 30 } }, member)).toThrow(/an absolute path/);
  });

  it('archives asynchronously from the member through a spool, bounded by the archive queue, and logs only what goes wrong there', () => {
    const config = pgbackrestConfig(s3, member);
    expect(config.global).toMatchObject({
      'archive-async': 'y',
      'spool-path': '/var/lib/postgresql/pgbackrest-spool',
      'archive-push-queue-max': '25GB',
      'log-level-console': 'off',
    });
    expect(config.stanza).toEqual({ 'pg1-path': server.data, 'pg1-socket-path': server.socket, 'pg1-port': '5432' });
    // The spool is on the data volume but outside the data directory (never backed up, never restored over).
    expect(config.global['spool-path']!.startsWith(`${server.data}/`)).toBe(false);
    expect(archiveQueueMax(100 * 2 ** 30)).toBe('25GB');
    expect(archiveQueueMax(2 * 2 ** 30)).toBe('1GB');
  });

  it('gives the agent its TLS server for the backup jobs only, and no repository at all', () => {
    const config = pgbackrestConfig(s3, agent);
    expect(config.global).toMatchObject({
      'tls-server-address': '*',
      'tls-server-port': String(AGENT_PORT),
      'tls-server-cert-file': '/etc/postgresql/tls/tls.crt',
      'tls-server-key-file': '/etc/postgresql/tls/tls.key',
      'tls-server-ca-file': '/etc/postgresql/tls/ca.crt',
      'tls-server-auth': `${AGENT_CLIENT_COMMON_NAME}=allixios`,
    });
    expect(Object.keys(config.global).filter((key) => key.startsWith('repo'))).toEqual([]);
    expect(config.stanza).toEqual({ 'pg1-path': server.data, 'pg1-socket-path': server.socket, 'pg1-port': '5432' });
    // Nobody else serves: the member's file has no TLS server.
    expect(Object.keys(pgbackrestConfig(s3, member).global).filter((key) => key.startsWith('tls-server'))).toEqual([]);
  });

  it('has the backup job reach every member over mutual TLS, back up from the primary with a fast checkpoint', () => {
    const config = pgbackrestConfig(s3, repositoryHost);
    expect(config.global).toMatchObject({ 'start-fast': 'y', 'backup-standby': 'n', 'log-level-console': 'info' });
    for (const index of [1, 2, 3]) {
      expect(config.stanza).toMatchObject({
        [`pg${index}-host-type`]: 'tls',
        [`pg${index}-host-port`]: String(AGENT_PORT),
        [`pg${index}-host-cert-file`]: '/etc/postgresql/tls/tls.crt',
        [`pg${index}-host-key-file`]: '/etc/postgresql/tls/tls.key',
        [`pg${index}-host-ca-file`]: '/etc/postgresql/tls/ca.crt',
        [`pg${index}-path`]: server.data,
      });
      // Only the running job knows the namespace: the hosts come from its environment.
      expect(config.stanza).not.toHaveProperty(`pg${index}-host`);
    }
    expect(config.stanza).not.toHaveProperty('pg4-host-type');
    const literal = pgbackrestConfig(s3, { ...repositoryHost, members: 1, hosts: ['localhost'] } as PgbackrestHost);
    expect(literal.stanza['pg1-host']).toBe('localhost');
    expect(() => pgbackrestConfig(s3, { ...repositoryHost, hosts: ['a'] } as PgbackrestHost)).toThrow(/one host per member \(3\)/);
  });
});

describe("Patroni's additions when backups are on", () => {
  const settings = {
    environment: 'prod' as const,
    scope: 'postgresql',
    members: 3,
    storage: '100Gi',
    memory: { limit: '8Gi', sharedBuffersRatio: 0.25 },
    tls: true,
    port: { name: 'postgresql', containerPort: 5432 },
  };

  it('archives with pgBackRest (the primary only: archive_mode on), at least every archive_timeout, and fetches WAL back from the repository', () => {
    const config = kubernetesPatroniConfig({ ...settings, backup: true });
    expect(config.postgresql.parameters).toMatchObject({ archive_mode: 'on', archive_command: 'pgbackrest --stanza=allixios archive-push "%p"', archive_timeout: '60s' });
    expect(archiveParameters().archive_mode).toBe('on');
    expect(config.postgresql.recovery_conf).toEqual({ restore_command: 'pgbackrest --stanza=allixios archive-get %f "%p"' });
    // Locally, not in the DCS (written once): turning backups on later still reaches the members.
    expect(config.bootstrap.dcs.postgresql.parameters).not.toHaveProperty('archive_mode');
  });

  it('builds a new replica from the repository first, pg_basebackup from the leader after', () => {
    const config = kubernetesPatroniConfig({ ...settings, backup: true });
    expect(config.postgresql.create_replica_methods).toEqual(['pgbackrest', 'basebackup']);
    expect(config.postgresql.pgbackrest).toEqual({ command: 'pgbackrest --stanza=allixios --delta restore', keep_data: true, no_params: true });
    expect(config.postgresql.basebackup).toEqual([{ checkpoint: 'fast' }]);
  });

  it('adds nothing of it without backups', () => {
    const config = kubernetesPatroniConfig(settings);
    expect(Object.keys(config.postgresql.parameters).filter((name) => name.startsWith('archive'))).toEqual([]);
    for (const key of ['create_replica_methods', 'pgbackrest', 'recovery_conf']) expect(config.postgresql).not.toHaveProperty(key);
    expect(renderPatroniConfig).toBeTypeOf('function');
  });
});

const settingsFor = (overrides: Partial<EngineSettings<{ sharedBuffersRatio: number }>> = {}): EngineSettings<{ sharedBuffersRatio: number }> => ({
  environment: 'prod',
  version: postgresql.defaultVersion,
  replicas: 3,
  storage: '100Gi',
  resources: postgresql.sizing.prod.resources,
  options: { sharedBuffersRatio: 0.25 },
  tls: true,
  image: { repository: 'ghcr.io/allixios/allixios-postgresql', tag: '18.4-1' },
  backup: backupSettings(),
  ...overrides,
});

describe('the backup PostgreSQL describes', () => {
  const spec: EngineSpec = engineSpec(postgresql, settingsFor());
  const backup = spec.backup!;

  it('runs a full backup and a differential one on the schedules of the backup settings, as a repository host with the job configuration', () => {
    expect(backup.tool).toBe('pgBackRest');
    expect(backup.jobs.map((job) => [job.name, job.schedule])).toEqual([
      ['full', '0 1 * * 0'],
      ['diff', '0 1 * * 1-6'],
    ]);
    for (const job of backup.jobs) {
      const script = job.command.at(-1)!;
      expect(job.command.slice(0, 2)).toEqual(['sh', '-c']);
      expect(script).toContain('pgbackrest --stanza=allixios stanza-create');
      expect(script).toContain(`exec pgbackrest --stanza=allixios --type=${job.name} backup`);
      expect(job.configFiles).toEqual([expect.objectContaining({ mountPath: PGBACKREST_CONFIG_PATH })]);
      expect(readConf(job.configFiles![0]!.content).allixios).toHaveProperty('pg3-host-type', 'tls');
      // pgBackRest writes to the object store itself: nothing for the rclone upload.
      expect(job.upload).toBeUndefined();
    }
    // Schedules are the lead's to resolve; the engine's defaults are the README's.
    expect(postgresql.backupSchedules).toEqual({ full: '0 1 * * 0', diff: '0 1 * * 1-6' });
    expect(() => engineSpec(postgresql, settingsFor({ backup: { ...backupSettings(), schedules: { full: '0 1 * * 0' } } }))).toThrow(
      /schedules\.postgresql\.diff: expected a cron schedule/,
    );
  });

  it("names every member by its stable name, from the namespace's domain the job is given or its resolv.conf", () => {
    const script = backupScript('postgresql', 3, 'full');
    for (const index of [0, 1, 2]) expect(script).toContain(`export PGBACKREST_PG${index + 1}_HOST="postgresql-${index}.postgresql-headless.$domain"`);
    expect(script).not.toContain('PGBACKREST_PG4_HOST');
    expect(script).toContain('ALLIXIOS_NAMESPACE_DOMAIN');
    expect(script).toMatch(/awk '\$1 == "search"/);
  });

  it('runs under sh: the stanza, then the backup, with the members named from the domain it is given; without one it stops, saying why', () => {
    const directory = mkdtempSync(join(tmpdir(), 'allixios-backup-script-'));
    const calls = join(directory, 'calls');
    // A stand-in pgbackrest that records its arguments and the hosts it would reach.
    writeFileSync(join(directory, 'pgbackrest'), `#!/bin/sh\necho "$* | $PGBACKREST_PG1_HOST $PGBACKREST_PG3_HOST" >> '${calls}'\n`);
    chmodSync(join(directory, 'pgbackrest'), 0o755);
    const run = (env: Record<string, string>) =>
      spawnSync('sh', ['-c', backupScript('postgresql', 3, 'diff')], { env: { PATH: `${directory}:/usr/bin:/bin`, ...env }, encoding: 'utf8' });
    const given = run({ ALLIXIOS_NAMESPACE_DOMAIN: 'allixios-prod.svc.cluster.local' });
    expect(given.status, given.stderr).toBe(0);
    const hosts = 'postgresql-0.postgresql-headless.allixios-prod.svc.cluster.local postgresql-2.postgresql-headless.allixios-prod.svc.cluster.local';
    expect(readFileSync(calls, 'utf8')).toBe(`--stanza=allixios stanza-create | ${hosts}\n--stanza=allixios --type=diff backup | ${hosts}\n`);
    // Outside Kubernetes resolv.conf names no <namespace>.svc.<domain>: nothing runs.
    const search = /^search\s+(\S+)/m.exec(readFileSync('/etc/resolv.conf', 'utf8'))?.[1] ?? '';
    if (!search.includes('.svc.')) {
      const refused = run({});
      expect(refused.status).toBe(1);
      expect(refused.stderr).toMatch(
        /postgresql-backup-diff: cannot tell the namespace's DNS domain: ALLIXIOS_NAMESPACE_DOMAIN is unset .* expected <namespace>\.svc\.<cluster domain>/,
      );
      expect(readFileSync(calls, 'utf8').split('\n').filter(Boolean)).toHaveLength(2);
    }
  });

  it('puts the agent beside each member: the TLS server with its own file, nothing secret, a health check that hands it a renewed certificate', () => {
    const agentSpec = backup.agent!;
    expect(agentSpec.command).toEqual(['pgbackrest', 'server']);
    expect(agentSpec.port).toEqual({ name: 'pgbackrest', containerPort: AGENT_PORT });
    expect(agentSpec.env).toEqual({});
    const conf = readConf(agentSpec.configFiles[0]!.content);
    expect(conf.global!['tls-server-auth']).toBe('postgresql=allixios');
    expect(conf.allixios).toEqual({ 'pg1-path': '/var/lib/postgresql/18/docker', 'pg1-socket-path': '/var/run/postgresql', 'pg1-port': '5432' });
    expect(agentSpec.healthCommand).toEqual(agentHealthCommand('/etc/postgresql/tls'));
    expect(agentSpec.healthCommand.at(-1)).toMatch(/kill -HUP 1/);
    expect(agentSpec.healthCommand.at(-1)).toMatch(/exec pgbackrest --tls-server-address=localhost --tls-server-port=8432 server-ping$/);
  });

  it("gives the members their pgbackrest.conf, the archiving settings and the stanza's name for the post-bootstrap", () => {
    const ha = spec.highAvailability!;
    const memberConf = ha.configFiles.find((file) => file.mountPath === PGBACKREST_CONFIG_PATH)!;
    expect(readConf(memberConf.content!).global).toMatchObject({ 'repo1-type': 's3', 'archive-async': 'y', 'archive-push-queue-max': '25GB' });
    const patroni = parse(ha.configFiles.find((file) => file.source === 'patroni/patroni.yml')!.content!, { version: '1.1' }) as {
      postgresql: { parameters: Record<string, string> };
    };
    expect(patroni.postgresql.parameters.archive_command).toBe('pgbackrest --stanza=allixios archive-push "%p"');
    expect(backup.memberEnv).toMatchObject({ ALLIXIOS_BACKUP_STANZA: 'allixios' });
    // Without backups, none of it.
    const plain = engineSpec(postgresql, settingsFor({ backup: undefined }));
    expect(plain.backup).toBeUndefined();
    expect(plain.highAvailability!.configFiles.map((file) => file.mountPath)).not.toContain(PGBACKREST_CONFIG_PATH);
  });

  it('says what a restore gets back and what is lost', () => {
    expect(backup.recoveryPoint).toMatch(/any moment of the last 30 days/);
    expect(backup.recoveryPoint).toMatch(/60 s of commits \(archive_timeout\)/);
  });

  it("backs PostgreSQL up only with the project's image (pgBackRest) and TLS (the agent serves TLS only), and says so in every preview otherwise", () => {
    const noImage = engineSpec(postgresql, settingsFor({ image: undefined, environment: 'dev', replicas: 1 }));
    expect(noImage.backup).toBeUndefined();
    expect(noImage.warnings).toEqual([
      expect.stringMatching(/^PostgreSQL is not backed up on this stack: pgBackRest.* is in the project's image, and allixios:engines\.postgresql\.image is unset/),
    ]);
    const noTls = engineSpec(postgresql, settingsFor({ tls: false, environment: 'staging', replicas: 2 }));
    expect(noTls.backup).toBeUndefined();
    expect(noTls.warnings).toEqual([expect.stringMatching(/^PostgreSQL is not backed up on this stack: .*pgBackRest's TLS server.*allixios:tls is off$/)]);
    expect(spec.warnings).toBeUndefined();
  });

  it("adds the repository's passphrase to the engine's secrets, not rotatable by the stack", () => {
    expect(postgresql.secrets).toContainEqual(BACKUP_CIPHER_SECRET);
    expect(BACKUP_CIPHER_SECRET.key).toBe('backup-cipher-pass');
    expect(BACKUP_CIPHER_SECRET.notRotatable).toMatch(/new repository/);
  });

  describe('attacks: nothing secret in a file, a ConfigMap, an argument', () => {
    const files = [...spec.highAvailability!.configFiles, ...backup.jobs.flatMap((job) => job.configFiles ?? []), ...backup.agent!.configFiles];
    const confFiles = files.filter((file) => file.mountPath === PGBACKREST_CONFIG_PATH);

    it('renders no passphrase or key option in any pgbackrest.conf: pgBackRest reads them from the environment', () => {
      // The member's, each job's, the agent's.
      expect(confFiles).toHaveLength(4);
      for (const file of confFiles) {
        const options = file.content!.split('\n').filter((line) => !line.startsWith('#'));
        expect(options.join('\n'), file.source).not.toMatch(/cipher-pass|s3-key(-secret)?=|secret|password/i);
        for (const key of Object.keys(readConf(file.content!).global!)) expect(key).not.toMatch(/pass|key-secret|^repo1-s3-key$/);
      }
    });

    it('takes every secret variable from a Secret reference, never a literal, and gives the agent none', () => {
      const secretVariables = Object.values(PGBACKREST_VARIABLES);
      const environments = [backup.memberEnv!, backup.agent!.env, ...backup.jobs.map((job) => job.env)];
      for (const env of environments) {
        for (const [name, value] of Object.entries(env)) if (secretVariables.includes(name as never)) expect(typeof value, name).toBe('object');
      }
      for (const env of [backup.memberEnv!, ...backup.jobs.map((job) => job.env)]) {
        expect(env).toMatchObject({
          PGBACKREST_REPO1_CIPHER_PASS: { secret: 'backup-cipher-pass' },
          PGBACKREST_REPO1_S3_KEY: { objectStore: 'accessKeyId' },
          PGBACKREST_REPO1_S3_KEY_SECRET: { objectStore: 'secretAccessKey' },
        });
      }
      // Under workload identity there are no keys at all.
      const identity = engineSpec(postgresql, settingsFor({ backup: backupSettings({ credentials: { kind: 'workloadIdentity', serviceAccountAnnotations: {} } }) })).backup!;
      expect(Object.keys(identity.memberEnv!).sort()).toEqual(['ALLIXIOS_BACKUP_STANZA', 'PGBACKREST_REPO1_CIPHER_PASS']);
    });

    it('puts no secret on a command line: the commands and the archiving settings name only the stanza and the options', () => {
      const commands = [
        ...backup.jobs.map((job) => job.command.join(' ')),
        backup.agent!.command.join(' '),
        backup.agent!.healthCommand.join(' '),
        ...Object.values(archiveParameters()),
        'pgbackrest --stanza=allixios --delta restore',
      ];
      for (const line of commands) expect(line).not.toMatch(/cipher-pass|--repo1-s3-key|PGBACKREST_REPO1_CIPHER_PASS=|password/i);
      // The whole description as a ConfigMap would hold it: secret values appear only as references.
      const text = JSON.stringify({ files, jobs: backup.jobs.map(({ command, schedule }) => ({ command, schedule })), agent: backup.agent!.command });
      expect(text).not.toMatch(/"(PGBACKREST_REPO1_CIPHER_PASS|PGBACKREST_REPO1_S3_KEY(_SECRET)?)":"/);
    });
  });
});
