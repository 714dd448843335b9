/**
 * The backup contract every engine follows (issue 17): the stack names one S3-compatible object
 * store (`allixios:backups`), each engine says in its description how an established tool backs it
 * up to that store ({@link BackupSpec}), and the targets render it: on Kubernetes the jobs are
 * CronJobs and the engine's members get what continuous archiving needs; on Docker nothing is
 * scheduled, and the same commands are run by hand (`npm run restore` prints them).
 *
 * No credential of the object store is ever a literal here: a value that is one is an
 * {@link ObjectStoreValue}, which the target fills from the Secret the stack names (or leaves
 * out under workload identity, where the pod's ServiceAccount carries the cloud role).
 */
import type { ComputeResources, ConnectionSpec, EnvValue } from './engine.ts';

/** How the backup jobs and the members authenticate to the object store. */
export type ObjectStoreCredentials =
  /** A Secret the platform team creates in the stack's namespace, with an access key pair that may write and read backups. */
  | { kind: 'secret'; secretName: string; accessKeyIdKey: string; secretAccessKeyKey: string }
  /** The cloud's workload identity (EKS IRSA, GKE Workload Identity): annotations of the ServiceAccount the backup pods run as. */
  | { kind: 'workloadIdentity'; serviceAccountAnnotations: Record<string, string> };

/** The stack's object store (`allixios:backups.objectStore`), resolved. */
export interface ObjectStoreSpec {
  /** `https://s3.eu-west-1.amazonaws.com`, `https://storage.googleapis.com`, a MinIO's URL. */
  endpoint: string;
  bucket: string;
  /** The stack's own prefix in the bucket (default: the stack's name); each engine writes under `<prefix>/<engine>`. */
  prefix: string;
  region: string;
  /** Path-style addressing (`<endpoint>/<bucket>/...`), which MinIO and most non-AWS stores need. */
  forcePathStyle: boolean;
  credentials: ObjectStoreCredentials;
}

/** What backing up means for one engine on one stack, given to its `describe()` when backups are on. */
export interface BackupSettings {
  objectStore: ObjectStoreSpec;
  /** This engine's prefix in the bucket: `<objectStore.prefix>/<engine>`, no leading or trailing slash. */
  path: string;
  /** Each job's cron schedule (UTC) by job name: the engine's defaults for the environment, overridden by `allixios:backups.schedules.<engine>`. */
  schedules: Record<string, string>;
  /**
   * How long backups are kept: `days`, by each tool's own means (pgBackRest's time retention,
   * SLM's expire_after, the bucket's lifecycle rules); `count`, what SLM keeps however old (the
   * other tools have no count that does not fight the days).
   */
  retention: { count: number; days: number };
}

/**
 * A value the target fills from the object store's settings: the literals (`endpoint`, `bucket`,
 * `region`, `path` (the engine's prefix), `forcePathStyle` as `true`/`false`, `url`: the engine's
 * prefix as `s3://<bucket>/<path>`) or the credentials from the stack's Secret (`accessKeyId`,
 * `secretAccessKey`; absent under workload identity, where the variable is not set at all).
 */
export type ObjectStoreField = 'endpoint' | 'bucket' | 'region' | 'path' | 'forcePathStyle' | 'url' | 'accessKeyId' | 'secretAccessKey';
export type ObjectStoreValue = { objectStore: ObjectStoreField };
/** The DNS domain of the namespace's Services (`<namespace>.svc.<cluster domain>`), from which a job names the members. */
export type ClusterValue = { cluster: 'namespaceDomain' };
export type BackupEnvValue = EnvValue | ObjectStoreValue | ClusterValue;

/** The directory a job's command writes its dump to, which the upload step sends to the object store. */
export const BACKUP_DIRECTORY = '/backup';

/**
 * A backup job: a CronJob on Kubernetes, a command to run by hand on Docker. Its command runs in
 * the engine's image (its tools: pgbackrest, mongodump, redis-cli, clickhouse-client) as a client
 * of the engine; either it writes to the object store itself (pgBackRest, ClickHouse's BACKUP TO
 * S3, Elasticsearch's snapshot repository), or it writes a dump into {@link BACKUP_DIRECTORY} and
 * `upload` sends the directory to the object store with rclone once the command has succeeded.
 */
export interface BackupJob {
  /** Short name: the CronJob is `<engine>-backup-<name>`. */
  name: string;
  /** What it does, for the render and the README. */
  description: string;
  /** Cron schedule (UTC), from {@link BackupSettings.schedules}. */
  schedule: string;
  command: string[];
  /** The connection it logs in with, as a scheduled task's: its URL (without the password) and the password in two variables. */
  connection?: { use: 'admin' | 'app' | 'backup'; urlVariable: string; passwordVariable?: string };
  env: Record<string, BackupEnvValue>;
  /** Send {@link BACKUP_DIRECTORY} to `<path>/<directory>/<UTC timestamp>/` once the command succeeded. */
  upload?: { directory: string };
  /** Size of the scratch volume holding the dump (emptyDir) when it is uploaded after. */
  scratchSize?: string;
  /** Secret files (templates of the engine's secrets) the job needs, mounted read-only. */
  secretFiles?: Array<{ source: string; mountPath: string }>;
  /** Config files the job needs (pgbackrest.conf), mounted read-only. */
  configFiles?: Array<{ source: string; mountPath: string; content: string }>;
  resources?: ComputeResources;
  /** A run still going after this long is stopped (default 3600). */
  deadlineSeconds?: number;
}

/**
 * How an engine is backed up ({@link EngineSpec.backup}), present when the stack's backups are on.
 */
export interface BackupSpec {
  /** The established tool: `pgBackRest`, `mongodump`, ... */
  tool: string;
  /** The engine's least-privileged backup user, for jobs whose connection `use` is `backup`. */
  connection?: ConnectionSpec;
  /**
   * The tool deletes what falls out of retention itself (pgBackRest's expire, Elasticsearch's
   * SLM retention): the store's credentials may delete under this engine's prefix. Otherwise a
   * lifecycle rule of the bucket expires its objects after the retention's days, and the
   * credentials delete nothing.
   */
  expiresItself: boolean;
  /**
   * Objects the tool deletes even when it expires nothing, as key patterns under the engine's
   * prefix (ClickHouse's `*\/.lock`, written and removed by every BACKUP): the credentials may
   * delete those and nothing else.
   */
  deletes?: string[];
  /** What a restore gets back and what is lost (the recovery point), for the README and the render. */
  recoveryPoint: string;
  jobs: BackupJob[];
  /**
   * Variables the engine's members need for continuous archiving (PostgreSQL's archive-push) or to
   * write to the store themselves (ClickHouse's BACKUP TO S3), filled by the target like a job's.
   */
  memberEnv?: Record<string, BackupEnvValue>;
  /**
   * A process beside each member, in the engine's image, that the jobs reach over the network
   * (pgBackRest's TLS server, through which a backup job on a repository host reads the primary's
   * or a standby's data directory): a second container of the member's pod sharing its data
   * volume. Its port is open to the engine's backup jobs only.
   */
  agent?: BackupAgent;
  /**
   * A command run before the engine starts in each member, in the engine's image (Elasticsearch:
   * the object store's keys into its keystore): an init container whose `directory` (an in-memory
   * emptyDir) the engine's container mounts at the same path, read-only.
   */
  memberInit?: BackupInit;
  /**
   * Settings the bootstrap needs to apply the engine's backup state itself (Elasticsearch: the
   * snapshot repository and its lifecycle policy), as variables of its run; never a secret. A
   * change of them runs the bootstrap again.
   */
  bootstrapEnv?: Record<string, string>;
}

export interface BackupAgent {
  name: string;
  command: string[];
  port: { name: string; containerPort: number };
  env: Record<string, BackupEnvValue>;
  configFiles: Array<{ source: string; mountPath: string; content: string }>;
  resources: ComputeResources;
  /** Alive and ready: the agent answers (exec form). */
  healthCommand: string[];
}

export interface BackupInit {
  command: string[];
  env: Record<string, BackupEnvValue>;
  /** The directory it writes and the engine reads. */
  directory: string;
}

/**
 * What `npm run restore` asks of an engine (its module's `restore`): where the backup is, what to
 * restore, and where to; the engine answers with a plan it can execute. A restore goes into a new,
 * empty target, which the engine checks before anything is written; a target that holds data is
 * refused unless `replaceExisting` names it (the command asks twice: `--execute` and
 * `--replace-existing <target>`).
 */
export interface RestoreRequest {
  /** The stack's backup settings for the engine, when the command was given `--stack`. */
  settings?: BackupSettings;
  /** A local copy of the backup (a directory, an archive, a local pgBackRest repository), instead of the object store. */
  source?: string;
  /** A point in time to recover to, where the engine can (PostgreSQL's WAL). */
  to?: Date;
  /** A backup's id (its label, its timestamp directory); default: the latest. */
  backup?: string;
  /** Where to restore: a data directory, a database or index name, as the engine says in its plan. */
  target: string;
  /** The target holds data and the operator named it twice: replace it. */
  replaceExisting: boolean;
  /** The engine's URL (from the environment variable the platform reads it from), for an engine restored into a running server. */
  url?: string;
}

export interface RestorePlan {
  /** What will happen, one line each, printed before anything is done (and alone in a dry run). */
  steps: string[];
  /** Does it, verifies the result and returns what was measured (rows, keys, seconds). */
  execute(log: (line: string) => void): Promise<Record<string, string | number>>;
}

/** An engine's restore: a plan from a request; refusals (a non-empty target, a time before the first backup) throw with the reason. */
export interface EngineRestore {
  plan(request: RestoreRequest): Promise<RestorePlan>;
}
