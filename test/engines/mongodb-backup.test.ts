/**
 * MongoDB's backup job (databases/mongodb/backup.ts) and its password file. No MongoDB runs here:
 * the job's command is run by a real `sh` with a stand-in `mongodump` on the PATH that records the
 * words it receives, and its options are checked against what mongodump documents (100.3.0 and
 * later: `--config`; `--oplog` only on a dump of the whole instance).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { BACKUP_DIRECTORY, type BackupSettings } from '../../databases/backup.ts';
import { CLIENT_CA_PATH, connectionUrl } from '../../databases/connection.ts';
import { engineSpec, readEngineFile, type Environment } from '../../databases/engine.ts';
import { archiveKey, BACKUP_URL_VARIABLE, backupConnection, DUMP_CONFIG_PATH, DUMP_CONFIG_SOURCE, dumpArguments, mongodbBackup } from '../../databases/mongodb/backup.ts';
import { CONNECTION_TLS, mongodb } from '../../databases/mongodb/index.ts';
import { renderSecretFile } from '../../databases/secret-files.ts';

const BACKUP: BackupSettings = {
  objectStore: {
    endpoint: 'https://s3.eu-west-1.amazonaws.com',
    bucket: 'allixios-backups',
    prefix: 'prod',
    region: 'eu-west-1',
    forcePathStyle: false,
    credentials: { kind: 'secret', secretName: 'backup-store', accessKeyIdKey: 'access-key-id', secretAccessKeyKey: 'secret-access-key' },
  },
  path: 'prod/mongodb',
  schedules: { dump: '45 3 * * *' },
  retention: { count: 7, days: 30 },
};

/** The engine as a stack with backups renders it. */
function describeWithBackup(environment: Environment, tls: boolean, backup: BackupSettings | null = BACKUP) {
  const sizing = mongodb.sizing[environment];
  return engineSpec(mongodb, {
    environment,
    version: mongodb.defaultVersion,
    replicas: sizing.replicas ?? 1,
    storage: sizing.storage,
    resources: sizing.resources,
    options: {},
    tls,
    ...(backup ? { backup } : {}),
  });
}

/** Runs the job's command with a stand-in mongodump that writes its arguments (one per line) and its environment's names. */
function runDump(command: string[], env: Record<string, string>): { args: string[]; status: number | null } {
  const bin = mkdtempSync(join(tmpdir(), 'mongodump-stand-in-'));
  const record = join(bin, 'argv');
  writeFileSync(join(bin, 'mongodump'), `#!/bin/sh\nfor word in "$@"; do printf '%s\\n' "$word"; done > ${record}\n`);
  chmodSync(join(bin, 'mongodump'), 0o755);
  const result = spawnSync(command[0]!, command.slice(1), { env: { PATH: `${bin}:/usr/bin:/bin`, ...env }, encoding: 'utf8' });
  return { args: readFileSync(record, 'utf8').split('\n').slice(0, -1), status: result.status };
}

describe('the dump job', () => {
  it('exists only when the stack backs up', () => {
    expect(describeWithBackup('prod', true, null).backup).toBeUndefined();
    expect(describeWithBackup('prod', true).backup?.jobs.map((job) => job.name)).toEqual(['dump']);
  });

  it('runs on the schedule the stack resolved, as the backup login, and uploads its scratch directory as "dump"', () => {
    const spec = describeWithBackup('prod', true).backup!;
    const [job] = spec.jobs;
    expect(spec.tool).toBe('mongodump');
    // The target renders the job's URL from this connection: the backup login, no database, its TLS form
    expect(spec.connection).toEqual(backupConnection(CONNECTION_TLS));
    // A bucket lifecycle rule expires the dumps; the job may delete nothing
    expect(spec.expiresItself).toBe(false);
    expect(job).toMatchObject({
      schedule: '45 3 * * *',
      // The URL only: mongodump reads the password from its --config file, never a variable.
      connection: { use: 'backup', urlVariable: 'MONGODB_BACKUP_URL' },
      upload: { directory: 'dump' },
      secretFiles: [{ source: DUMP_CONFIG_SOURCE, mountPath: DUMP_CONFIG_PATH }],
    });
    expect(spec.recoveryPoint).toMatch(/Everything written since is lost/);
  });

  it('dumps the whole set with its oplog, from a secondary when there is one, into one gzipped archive in the backup directory', () => {
    expect(dumpArguments(false)).toEqual([
      `--config=${DUMP_CONFIG_PATH}`,
      '--readPreference=secondaryPreferred',
      '--oplog',
      `--archive=${BACKUP_DIRECTORY}/mongodb.archive`,
      '--gzip',
    ]);
    // No --db, --collection or --nsInclude: mongodump refuses --oplog on anything but a whole-instance dump
    expect(dumpArguments(true).filter((word) => /^--(db|collection|nsInclude|nsExclude|excludeCollection)/.test(word))).toEqual([]);
  });

  it('verifies the server with the stack’s CA bundle on a TLS stack, the same file the URL names', () => {
    expect(dumpArguments(true).slice(-2)).toEqual(['--ssl', `--sslCAFile=${CLIENT_CA_PATH}`]);
    const url = connectionUrl(backupConnection(CONNECTION_TLS), undefined, 'mongodb-0.mongodb-headless', 27017, {});
    // mongodump refuses a CA file in the URL that differs from --sslCAFile: they must be the same
    expect(new URL(url).searchParams.get('tlsCAFile')).toBe(CLIENT_CA_PATH);
  });

  it('logs in with a URL that names no database (a URL with one is a single-database dump, which --oplog refuses) and has the slash before its options', () => {
    const url = connectionUrl(backupConnection(CONNECTION_TLS), undefined, 'mongodb', 27017);
    expect(url).toBe('mongodb://allixios_backup@mongodb:27017/?authSource=admin');
  });

  it('passes the URL to mongodump as one word, whatever it holds, and no password on the command line', () => {
    // Given the job's command and a URL that would break or inject into a careless shell line
    const [job] = describeWithBackup('staging', true).backup!.jobs;
    const hostile = 'mongodb://allixios_backup@mongodb:27017/?authSource=admin&appName=a b\'$(touch /tmp/pwned)"`id`';
    // When run by sh with a stand-in mongodump
    const { args, status } = runDump(job!.command, { [BACKUP_URL_VARIABLE]: hostile, MONGODB_BACKUP_PASSWORD: 'the-password-9f3k' });
    // Then mongodump got the URL intact, its options after it, and the password nowhere
    expect(status).toBe(0);
    expect(args).toEqual([`--uri=${hostile}`, ...dumpArguments(true)]);
    expect(args.join(' ')).not.toContain('the-password-9f3k');
    expect(job!.command.join(' ')).not.toMatch(/--password|-p\b/);
  });

  it('refuses backup settings without the job’s schedule, naming the job and the schedules given', () => {
    expect(() => mongodbBackup({ ...BACKUP, schedules: { nightly: '0 1 * * *' } }, false, CONNECTION_TLS)).toThrow(
      'mongodb: the backup settings have no schedule for the job "dump" (schedules given: nightly)',
    );
  });
});

describe("the dump's password file", () => {
  it('renders to a YAML file whose one key is the backup password, read back exactly whatever characters it has', () => {
    const template = readEngineFile(mongodb, DUMP_CONFIG_SOURCE);
    for (const password of ['plainPassword32chars0123456789ab', `quote"back\\slash: #hash 'single' {brace} [x] *star &amp !bang %`, ' leading space', 'yes']) {
      const rendered = renderSecretFile(template, { 'backup-password': password }, DUMP_CONFIG_SOURCE);
      expect(parse(rendered)).toEqual({ password });
    }
  });

  it('is a secret file of the job only: the engine’s containers neither mount it nor get the backup password in a variable other than the first start’s', () => {
    const spec = describeWithBackup('prod', true);
    expect(spec.secretFiles.map((file) => file.source)).not.toContain(DUMP_CONFIG_SOURCE);
    expect(Object.entries(spec.env).filter(([, value]) => typeof value === 'object' && value.secret === 'backup-password')).toEqual([
      // The entrypoint unsets every MONGO_INITDB_ variable before it starts mongod
      ['MONGO_INITDB_BACKUP_PASSWORD', { secret: 'backup-password' }],
    ]);
  });

  it('is in the passwords the bootstrap keeps, so an older volume gets the login', () => {
    const rendered = renderSecretFile(readEngineFile(mongodb, 'bootstrap/user-passwords.json'), {
      'root-password': 'r',
      'app-password': 'a',
      'readonly-password': 'o',
      'backup-password': 'b',
    });
    expect(JSON.parse(rendered)).toMatchObject({ allixios_backup: 'b' });
  });
});

describe('where a backup is', () => {
  it('is <path>/dump/<id>/mongodb.archive, the id checked', () => {
    expect(archiveKey(BACKUP, '20260102T013000Z')).toBe('prod/mongodb/dump/20260102T013000Z/mongodb.archive');
    expect(() => archiveKey(BACKUP, '../../etc')).toThrow('mongodb: backup id: expected the name of one uploaded dump (its UTC timestamp, e.g. 20260102T013000Z), got "../../etc"');
  });
});
