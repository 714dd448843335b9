/**
 * ClickHouse's backup (issue 17; databases/clickhouse/README.md, "Backups and restore"):
 * ClickHouse's own `BACKUP DATABASE allixios TO S3(...)`, a full backup on Sundays and an
 * incremental one on it the other nights, written by the server straight to the object store.
 *
 * The store's URL and keys are in the server's configuration, as the named collection
 * `allixios_backups` (`config.d/backup.xml`, every value from the environment through `from_env`,
 * which the target fills: {@link BackupSpec.memberEnv}), never in a statement: a statement's text
 * reaches `system.query_log` and `system.backups`, a collection's values do not. The collection's
 * values are not overridable, so a query cannot point it at another host, and only a user granted
 * `NAMED COLLECTION ON allixios_backups` may use it at all: `allixios_backup`, whose other right is
 * `BACKUP ON allixios.*` (users.d/allixios.xml).
 */
import { type BackupJob, type BackupSettings, type BackupSpec, type ObjectStoreSpec } from '../backup.ts';
import { CLIENT_CA_PATH } from '../connection.ts';
import { openSslClient } from './replication.ts';
import { readEngineFile, type ComputeResources, type EngineModule } from '../engine.ts';

/** The named collection of the store, in the members' configuration and the jobs' clickhouse-local. */
export const BACKUP_COLLECTION = 'allixios_backups';
/** The database that is backed up. */
export const BACKUP_DATABASE = 'allixios';
/** The backup user (users.d/allixios.xml) and its secret. */
export const BACKUP_USER = 'allixios_backup';
export const BACKUP_PASSWORD_SECRET = 'backup-password';

/** The variables `config.d/backup.xml` reads. */
export const BACKUP_ENV = {
  url: 'CLICKHOUSE_BACKUP_URL',
  accessKeyId: 'CLICKHOUSE_BACKUP_ACCESS_KEY_ID',
  secretAccessKey: 'CLICKHOUSE_BACKUP_SECRET_ACCESS_KEY',
} as const;

/** Where a member mounts the collection, and where the jobs find their files. */
export const SERVER_COLLECTION_PATH = '/etc/clickhouse-server/config.d/backup.xml';
const JOB_DIRECTORY = '/etc/clickhouse-backup';
export const JOB_FILES = {
  script: `${JOB_DIRECTORY}/clickhouse-backup.sh`,
  collection: `${JOB_DIRECTORY}/collection.xml`,
  client: `${JOB_DIRECTORY}/client.xml`,
} as const;

/** A backup id: `full/<UTC time>` or `incremental/<UTC time>`, as the jobs name them. */
export const BACKUP_ID = /^(full|incremental)\/\d{8}T\d{6}Z$/;

/** `S3(allixios_backups, '<id>')`: where a backup is, by the collection; refuses an id that is not one. */
export function backupLocation(id: string): string {
  if (!BACKUP_ID.test(id)) throw new Error(`clickhouse backup: expected a backup id such as full/20261208T030000Z or incremental/20261209T030000Z, got ${JSON.stringify(id)}`);
  return `S3(${BACKUP_COLLECTION}, '${id}')`;
}

/** The statements the jobs run; `{id}` and `{base}` are filled by the job's script with ids it checked. */
export const BACKUP_STATEMENTS = {
  full: `BACKUP DATABASE ${BACKUP_DATABASE} TO S3(${BACKUP_COLLECTION}, '{id}')`,
  incremental: `BACKUP DATABASE ${BACKUP_DATABASE} TO S3(${BACKUP_COLLECTION}, '{id}') SETTINGS base_backup = S3(${BACKUP_COLLECTION}, '{base}')`,
  /**
   * The latest complete full backup: ClickHouse writes a backup's `.backup` file last, and the ids
   * sort by time; an object whose name is not such an id is ignored. An empty string when there is none.
   */
  latestFull: `SELECT max(extract(_path, '/(full/[0-9]{8}T[0-9]{6}Z)/\\\\.backup$')) FROM s3(${BACKUP_COLLECTION}, filename = 'full/*/.backup', format = 'One')`,
  /** The latest complete backup of either kind (for a restore of "the latest"); an empty string when there is none. */
  latest: `SELECT argMax(id, extract(id, '[0-9]{8}T[0-9]{6}Z')) FROM (SELECT extract(_path, '/((full|incremental)/[0-9]{8}T[0-9]{6}Z)/\\\\.backup$') AS id FROM s3(${BACKUP_COLLECTION}, filename = '{full,incremental}/*/.backup', format = 'One') WHERE id != '')`,
} as const;

/**
 * The store's HTTP URL of the engine's prefix, with a trailing slash: path-style
 * (`<endpoint>/<bucket>/<path>/`) or virtual-hosted (`https://<bucket>.<endpoint host>/<path>/`).
 * A literal, not a secret: it goes in the environment as it is.
 */
export function objectStoreUrl(store: Pick<ObjectStoreSpec, 'endpoint' | 'bucket' | 'forcePathStyle'>, path: string): string {
  const endpoint = new URL(store.endpoint);
  const prefix = path.replace(/^\/+|\/+$/g, '');
  const base = store.forcePathStyle ? `${endpoint.origin}${endpoint.pathname.replace(/\/+$/, '')}/${store.bucket}` : `${endpoint.protocol}//${store.bucket}.${endpoint.host}`;
  return `${base}/${prefix}/`;
}

/**
 * The named collection as a configuration file (`config.d/backup.xml` of a member, the jobs'
 * clickhouse-local): the URL and keys from the environment; under workload identity no keys, the
 * pod's cloud identity instead (`use_environment_credentials`).
 */
export function collectionConfig(credentials: ObjectStoreSpec['credentials']['kind']): string {
  const keys =
    credentials === 'secret'
      ? [
          `<access_key_id from_env="${BACKUP_ENV.accessKeyId}" overridable="false"/>`,
          `<secret_access_key from_env="${BACKUP_ENV.secretAccessKey}" overridable="false"/>`,
          '<use_environment_credentials overridable="false">0</use_environment_credentials>',
        ]
      : [
          "<!-- Workload identity: the pod's cloud role signs the requests; a query may use it only with",
          '     s3_allow_server_credentials_in_user_queries = 1, which the backup jobs set. -->',
          '<use_environment_credentials overridable="false">1</use_environment_credentials>',
        ];
  return [
    '<?xml version="1.0"?>',
    '<!--',
    '  The object store of the Allixios backups, as the named collection allixios_backups (generated by',
    '  databases/clickhouse/backup.ts; databases/clickhouse/README.md, "Backups and restore", says why).',
    "  BACKUP ... TO S3(allixios_backups, '<id>') writes under its URL with its keys, so no credential is",
    '  ever in a statement (system.query_log, system.backups). Every value comes from the environment',
    '  (from_env) and none can be overridden by a query: the URL cannot be pointed at another host.',
    '-->',
    '<clickhouse>',
    '    <named_collections>',
    `        <${BACKUP_COLLECTION}>`,
    `            <url from_env="${BACKUP_ENV.url}" overridable="false"/>`,
    ...keys.map((line) => `            ${line}`),
    '            <no_sign_request overridable="false">0</no_sign_request>',
    `        </${BACKUP_COLLECTION}>`,
    '    </named_collections>',
    '</clickhouse>',
    '',
  ].join('\n');
}

/** clickhouse-client's configuration in the jobs: on a TLS stack, the server verified against the stack's CA and by name. */
export function clientConfig(tls: boolean): string {
  const ssl = tls
    ? ['    <openSSL>', ...openSslClient({ caFile: CLIENT_CA_PATH }).map((line) => `        ${line}`), '    </openSSL>']
    : ['    <!-- No TLS on this stack: nothing to verify. -->'];
  return ['<?xml version="1.0"?>', '<!-- clickhouse-client of the backup jobs (databases/clickhouse/backup.ts). -->', '<config>', ...ssl, '</config>', ''].join('\n');
}

/** The object store's values for a member or a job: the URL literal, the keys from the stack's Secret (none under workload identity). */
export function storeEnv(backup: BackupSettings): BackupJob['env'] {
  return {
    [BACKUP_ENV.url]: objectStoreUrl(backup.objectStore, backup.path),
    ...(backup.objectStore.credentials.kind === 'secret'
      ? { [BACKUP_ENV.accessKeyId]: { objectStore: 'accessKeyId' as const }, [BACKUP_ENV.secretAccessKey]: { objectStore: 'secretAccessKey' as const } }
      : {}),
  };
}

/** clickhouse-client and clickhouse-local are light; the server does the work. */
const JOB_RESOURCES: ComputeResources = { requests: { cpu: '50m', memory: '128Mi' }, limits: { cpu: '500m', memory: '512Mi' } };

/** What a restore gets back, and what is lost: the README says the same. */
export function recoveryPoint(schedules: { full: string; incremental: string }): string {
  return [
    `The latest backup: a full one (schedule ${schedules.full} UTC) or an incremental one on the latest full (schedule ${schedules.incremental} UTC); a restore reads at most those two.`,
    'Lost: the events written after it, up to one interval of the schedules (a day by default): page views, clicks, searches, API metrics and revenue events of that day, and what the rollups and dashboards count from them.',
    'On a replicated stack the backup holds what the member it ran on had: a complete copy of the one shard, but for parts the other member had not yet replicated (usually less than a second).',
  ].join(' ');
}

export interface ClickhouseBackupInput {
  backup: BackupSettings;
  tls: boolean;
}

/** The engine's BackupSpec for a stack whose backups are on. */
export function clickhouseBackup(module: Pick<EngineModule, 'name' | 'directory'>, input: ClickhouseBackupInput): BackupSpec {
  const { backup, tls } = input;
  const schedules = { full: backup.schedules.full, incremental: backup.schedules.incremental };
  for (const [job, schedule] of Object.entries(schedules)) {
    if (!schedule) throw new Error(`clickhouse: backup.schedules.${job}: expected a cron schedule for the ${job} backup job, got ${JSON.stringify(backup.schedules)}`);
  }
  const workloadIdentity = backup.objectStore.credentials.kind === 'workloadIdentity';
  // Under workload identity the server may use the pod's identity for a query's S3 access only when asked.
  const ambient = workloadIdentity ? '--s3_allow_server_credentials_in_user_queries=1' : '';
  const configFiles: NonNullable<BackupJob['configFiles']> = [
    { source: 'config/clickhouse-backup.sh', mountPath: JOB_FILES.script, content: readEngineFile(module, 'config/clickhouse-backup.sh') },
    { source: 'config/backup-collection.xml', mountPath: JOB_FILES.collection, content: collectionConfig(backup.objectStore.credentials.kind) },
    { source: 'config/backup-client.xml', mountPath: JOB_FILES.client, content: clientConfig(tls) },
  ];
  const job = (name: 'full' | 'incremental', description: string, deadlineSeconds: number): BackupJob => ({
    name,
    description,
    schedule: schedules[name]!,
    command: ['sh', JOB_FILES.script, name],
    env: {
      CLICKHOUSE_USER: BACKUP_USER,
      CLICKHOUSE_PASSWORD: { secret: BACKUP_PASSWORD_SECRET },
      // The engine's Service, by the short name its certificate carries; the native port.
      CLICKHOUSE_HOST: 'clickhouse',
      CLICKHOUSE_PORT: tls ? '9440' : '9000',
      CLICKHOUSE_CLIENT_OPTIONS: [tls ? '--secure' : '', ambient].filter(Boolean).join(' '),
      CLICKHOUSE_CLIENT_CONFIG: JOB_FILES.client,
      CLICKHOUSE_BACKUP_COLLECTION_CONFIG: JOB_FILES.collection,
      CLICKHOUSE_LOCAL_OPTIONS: ambient,
      CLICKHOUSE_BACKUP_FULL_SQL: BACKUP_STATEMENTS.full,
      CLICKHOUSE_BACKUP_INCREMENTAL_SQL: BACKUP_STATEMENTS.incremental,
      CLICKHOUSE_BACKUP_LATEST_FULL_SQL: BACKUP_STATEMENTS.latestFull,
      CLICKHOUSE_BACKUP_TIMEOUT: String(deadlineSeconds),
      // clickhouse-local in the job lists the store with the same collection.
      ...storeEnv(backup),
    },
    configFiles,
    resources: JOB_RESOURCES,
    deadlineSeconds,
  });
  return {
    tool: 'ClickHouse BACKUP/RESTORE to S3',
    // ClickHouse keeps no retention of its own: the bucket's lifecycle rule expires the backups
    // after the retention's days; the server deletes only its own `.lock` files.
    expiresItself: false,
    deletes: ['*/.lock'],
    recoveryPoint: recoveryPoint({ full: schedules.full!, incremental: schedules.incremental! }),
    jobs: [
      job('full', `BACKUP DATABASE allixios TO S3(allixios_backups, 'full/<time>') as ${BACKUP_USER}: every table, written by the server to ${backup.path}/full/<time>/`, 6 * 3600),
      job(
        'incremental',
        `BACKUP DATABASE allixios TO S3(allixios_backups, 'incremental/<time>') on the latest full backup (base_backup): what changed since, written to ${backup.path}/incremental/<time>/`,
        3 * 3600,
      ),
    ],
    // The server writes the backups itself: it needs the store's URL and keys.
    memberEnv: storeEnv(backup),
  };
}
