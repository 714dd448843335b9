/**
 * Redis's backup as the engine describes it (databases/redis/backup.ts) and its backup user as the
 * bootstrap reads it, on plain data: the real processes are in test/engines/redis-backup.test.ts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseUsersAcl } from '../bootstrap/adapters/redis-files.ts';
import { BACKUP_DIRECTORY, type BackupSettings } from '../databases/backup.ts';
import { CLIENT_CA_PATH } from '../databases/connection.ts';
import { engineSpec, type Environment } from '../databases/engine.ts';
import { redis } from '../databases/redis/index.ts';
import { BACKUP_SCRIPT } from '../databases/redis/backup.ts';

const BACKUP: BackupSettings = {
  objectStore: {
    endpoint: 'https://s3.eu-west-1.amazonaws.com',
    bucket: 'allixios-backups',
    prefix: 'prod',
    region: 'eu-west-1',
    forcePathStyle: false,
    credentials: { kind: 'secret', secretName: 'allixios-backups', accessKeyIdKey: 'access-key-id', secretAccessKeyKey: 'secret-access-key' },
  },
  path: 'prod/redis',
  schedules: { snapshot: '15 * * * *' },
  retention: { count: 7, days: 14 },
};

function spec(environment: Environment, options: { tls?: boolean; backup?: BackupSettings | undefined } = {}) {
  const sizing = redis.sizing[environment];
  return engineSpec(redis, {
    environment,
    version: redis.defaultVersion,
    replicas: sizing.replicas ?? 1,
    storage: sizing.storage,
    resources: sizing.resources,
    options: redis.optionsSchema.parse({}),
    tls: options.tls ?? false,
    ...('backup' in options ? (options.backup ? { backup: options.backup } : {}) : { backup: BACKUP }),
  });
}

describe('the snapshot job', () => {
  it('is described only when the stack backs up', () => {
    expect(spec('prod', { backup: undefined }).backup).toBeUndefined();
    expect(spec('prod').backup?.jobs.map((job) => job.name)).toEqual(['snapshot']);
  });

  it('runs the mounted script on the schedule of settings.backup, and uploads the backup directory to rdb/', () => {
    const backup = spec('prod', { backup: { ...BACKUP, schedules: { snapshot: '*/20 * * * *' } } }).backup!;
    const [job] = backup.jobs;
    expect(backup.tool).toBe('redis-cli --rdb');
    expect(job!.schedule).toBe('*/20 * * * *');
    expect(job!.command).toEqual(['sh', BACKUP_SCRIPT]);
    expect(job!.configFiles).toEqual([
      { source: 'config/redis-backup.sh', mountPath: BACKUP_SCRIPT, content: readFileSync(join(redis.directory, 'config/redis-backup.sh'), 'utf8') },
    ]);
    expect(job!.upload).toEqual({ directory: 'rdb' });
    expect(job!.env.BACKUP_DIRECTORY).toBe(BACKUP_DIRECTORY);
    // The RDB is smaller than the dataset, which maxmemory keeps under the memory limit.
    expect(job!.scratchSize).toBe(redis.sizing.prod.resources.limits.memory);
  });

  it('logs in as allixios_backup with its password from the Secret, in REDISCLI_AUTH, and no literal credential', () => {
    const [job] = spec('prod').backup!.jobs;
    expect(job!.env.REDISCLI_AUTH).toEqual({ secret: 'backup-password' });
    expect(job!.env.REDIS_BACKUP_USER).toBe('allixios_backup');
    // Every other value is a plain setting: host names, the master's name, TLS arguments.
    const literals = Object.entries(job!.env).filter(([name]) => name !== 'REDISCLI_AUTH');
    expect(literals.every(([, value]) => typeof value === 'string')).toBe(true);
    expect(literals.map(([name]) => name).sort()).toEqual(['BACKUP_DIRECTORY', 'REDIS_BACKUP_USER', 'REDIS_CLI_TLS', 'REDIS_HOST', 'REDIS_MASTER_NAME', 'REDIS_SENTINEL']);
    // No password on the command line: the script passes none to redis-cli (it reads REDISCLI_AUTH itself).
    const script = readFileSync(join(redis.directory, 'config/redis-backup.sh'), 'utf8');
    expect(script).not.toMatch(/\s(-a|--pass|--askpass)\s/);
    // Nor does it expand the password anywhere, not even for a builtin.
    expect(script).toContain('REDISCLI_AUTH+set');
    expect(script).not.toMatch(/\$\{?REDISCLI_AUTH(?!\+set\})/);
  });

  it('asks the Sentinels’ Service for a replica and falls back to the engine’s Service, by the names the certificates carry', () => {
    const [job] = spec('staging').backup!.jobs;
    expect(job!.env.REDIS_SENTINEL).toBe('redis-sentinel:26379');
    expect(job!.env.REDIS_HOST).toBe('redis:6379');
    expect(job!.env.REDIS_MASTER_NAME).toBe('allixios');
  });

  it('verifies the server with the stack’s CA on a TLS stack only', () => {
    expect(spec('prod', { tls: true }).backup!.jobs[0]!.env.REDIS_CLI_TLS).toBe(`--tls --cacert ${CLIENT_CA_PATH}`);
    expect(spec('dev', { tls: false }).backup!.jobs[0]!.env.REDIS_CLI_TLS).toBe('');
  });

  it('states what is lost between snapshots', () => {
    const { recoveryPoint } = spec('prod').backup!;
    expect(recoveryPoint).toContain('15 * * * *');
    for (const lost of ['sessions', 'rate-limit counters', 'cache entries']) expect(recoveryPoint).toContain(lost);
  });

  it('refuses backup settings without a snapshot schedule, naming the key', () => {
    expect(() => spec('prod', { backup: { ...BACKUP, schedules: {} } })).toThrow('redis: backup.schedules.snapshot: expected a cron schedule for the snapshot job, got {}');
  });
});

describe('the backup user', () => {
  it('is a secret of the engine, generated like the others', () => {
    expect(redis.secrets.map((secret) => secret.key)).toContain('backup-password');
  });

  it('is in users.acl with REPLCONF and SYNC only, no key and no channel, which the bootstrap keeps like every user', () => {
    const users = parseUsersAcl(readFileSync(join(redis.directory, 'config/users.acl'), 'utf8'), 'databases/redis/config/users.acl');
    const backup = users.find((user) => user.name === 'allixios_backup');
    expect(backup).toEqual({ name: 'allixios_backup', line: 7, enabled: true, password: 'set', rules: ['resetkeys', 'resetchannels', '-@all', '+replconf', '+sync'] });
  });

  it('is in Sentinel’s ACL with where the replicas and the master are, and nothing else', () => {
    const line = readFileSync(join(redis.directory, 'config/sentinel-users.acl'), 'utf8')
      .split('\n')
      .find((candidate) => candidate.startsWith('user allixios_backup '));
    expect(line).toBe('user allixios_backup on {{ each-sha256 "backup-password" "#" }} resetkeys resetchannels -@all +sentinel|replicas +sentinel|get-master-addr-by-name');
  });
});
