/**
 * Redis's backup (issue 17; databases/redis/README.md, "Backups and restore"): an RDB snapshot on
 * a schedule, taken with `redis-cli --rdb` (Redis's own replication protocol: the server forks
 * and streams a fresh RDB, as it does to a new replica) from a replica in sync, checked with
 * `redis-check-rdb`, and uploaded by the job's rclone step. AOF stays what it is on the members:
 * it protects against a restart, the snapshot against a lost volume or cluster.
 *
 * The job logs in as `allixios_backup` (config/users.acl: REPLCONF and SYNC only, no key, no
 * channel; config/sentinel-users.acl: where the replicas and the master are, nothing else), its
 * password in `REDISCLI_AUTH`, which redis-cli reads itself: it is on no command line.
 */
import { BACKUP_DIRECTORY, type BackupJob, type BackupSettings, type BackupSpec } from '../backup.ts';
import { CLIENT_CA_PATH } from '../connection.ts';
import { readEngineFile, type ComputeResources, type EngineModule } from '../engine.ts';
import { MASTER_NAME, REDIS_PORT, SENTINEL_PORT } from './sentinel.ts';

/** The backup user, in config/users.acl and config/sentinel-users.acl. */
export const BACKUP_USER = 'allixios_backup';
/** Its secret. */
export const BACKUP_PASSWORD_SECRET = 'backup-password';

/** The job's script (`config/redis-backup.sh`), mounted from a ConfigMap where the job runs it. */
export const BACKUP_SCRIPT = '/etc/redis/backup/redis-backup.sh';

/** The object-store directory under the engine's prefix: `<path>/rdb/<UTC timestamp>/dump.rdb` and `snapshot.txt`. */
export const RDB_DIRECTORY = 'rdb';

/**
 * redis-cli streams the RDB from the socket to the file: little CPU and memory of its own. The
 * server's fork is what costs (on the replica, not here).
 */
const JOB_RESOURCES: ComputeResources = { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '500m', memory: '256Mi' } };

/** What a restore gets back, and what is lost: the README says the same. */
export function recoveryPoint(schedule: string): string {
  return [
    `The latest RDB snapshot (schedule ${schedule} UTC): every key as it was on the replica when the snapshot began, with its TTL (absolute expiry times: a key whose TTL ran out since is gone after the restore).`,
    'Lost: every write after that moment, up to one interval of the schedule plus the replica’s lag: sessions and auth tokens issued since (their users sign in again), rate-limit counters (windows restart at zero), live metrics, and cache entries (rebuilt from PostgreSQL on the next miss).',
    'The members’ AOF (appendfsync everysec) still covers a restart or a rescheduled pod with at most a second lost; the snapshot is for a lost volume or cluster.',
  ].join(' ');
}

export interface RedisBackupInput {
  backup: BackupSettings;
  tls: boolean;
  /** The engine's memory limit: an RDB is smaller than the dataset, which maxmemory keeps below it. */
  memoryLimit: string;
}

/** The engine's name, which the engine's and the Sentinels' Services carry (`stacks/kubernetes`). */
const ENGINE = 'redis';

/** The environment of the job, as config/redis-backup.sh reads it. */
export function backupJobEnv(tls: boolean): BackupJob['env'] {
  return {
    REDISCLI_AUTH: { secret: BACKUP_PASSWORD_SECRET },
    REDIS_BACKUP_USER: BACKUP_USER,
    // Short names: the job runs in the stack's namespace, and the certificates carry them.
    REDIS_HOST: `${ENGINE}:${REDIS_PORT}`,
    REDIS_SENTINEL: `${ENGINE}-sentinel:${SENTINEL_PORT}`,
    REDIS_MASTER_NAME: MASTER_NAME,
    REDIS_CLI_TLS: tls ? `--tls --cacert ${CLIENT_CA_PATH}` : '',
    BACKUP_DIRECTORY,
  };
}

/** The engine's BackupSpec for a stack whose backups are on. */
export function redisBackup(module: Pick<EngineModule, 'name' | 'directory'>, input: RedisBackupInput): BackupSpec {
  const schedule = input.backup.schedules.snapshot;
  if (!schedule) {
    throw new Error(`redis: backup.schedules.snapshot: expected a cron schedule for the snapshot job, got ${JSON.stringify(input.backup.schedules)}`);
  }
  const job: BackupJob = {
    name: 'snapshot',
    description: `RDB snapshot of a replica in sync (redis-cli --rdb as ${BACKUP_USER}), checked with redis-check-rdb, uploaded to ${input.backup.path}/${RDB_DIRECTORY}/<time>/`,
    schedule,
    command: ['sh', BACKUP_SCRIPT],
    env: backupJobEnv(input.tls),
    upload: { directory: RDB_DIRECTORY },
    // The RDB is compressed and smaller than the dataset, which maxmemory keeps under the memory limit.
    scratchSize: input.memoryLimit,
    configFiles: [{ source: 'config/redis-backup.sh', mountPath: BACKUP_SCRIPT, content: readEngineFile(module, 'config/redis-backup.sh') }],
    resources: JOB_RESOURCES,
    // A snapshot of a few GB streams in minutes; one still going after 30 is stuck.
    deadlineSeconds: 1800,
  };
  // rclone never deletes: the bucket's lifecycle rule expires the snapshots after the retention's days.
  return { tool: 'redis-cli --rdb', recoveryPoint: recoveryPoint(schedule), jobs: [job], expiresItself: false };
}
