/**
 * PostgreSQL's backups with pgBackRest (issue 17; databases/postgresql/README.md, "Backups and
 * point-in-time recovery"): what every member, the TLS agent beside it, the backup jobs and a
 * restore read as `pgbackrest.conf`, rendered by one pure function from the stack's
 * {@link BackupSettings} ({@link pgbackrestConfig}), and the engine's {@link BackupSpec}.
 *
 * The shape:
 * - every member archives its WAL continuously (`archive_command`, set by `patroni.ts` when backups
 *   are on; PostgreSQL archives on the primary only with `archive_mode = on`), asynchronously, to the
 *   repository in the object store, encrypted there (aes-256-cbc);
 * - beside each member runs pgBackRest's TLS server (the {@link BackupSpec.agent}), which shares the
 *   member's data volume and socket: through it a backup job reads the data directory;
 * - the backup jobs (full on Sunday, differential the other nights) run `pgbackrest backup` as a
 *   repository host with every member as a `pg<i>-host` reached over mutual TLS, then expire what is
 *   past retention (pgBackRest runs `expire` after every successful backup);
 * - a new replica is restored from the repository (`create_replica_methods: [pgbackrest, basebackup]`),
 *   and a restore to a point in time is `restore.ts`.
 *
 * Nothing secret is rendered: the repository's passphrase ({@link BACKUP_CIPHER_SECRET}) and the
 * object store's keys reach pgBackRest through its environment ({@link PGBACKREST_VARIABLES}), which
 * pgBackRest reads for any option, and the secure ones (`repo1-cipher-pass`, the keys) are refused on
 * its command line anyway.
 */
import type { BackupEnvValue, BackupJob, BackupSettings, BackupSpec } from '../backup.ts';
import { TLS_FILES, type ComputeResources, type ConfigFile, type SecretDefinition } from '../engine.ts';
import { shellQuote } from '../shell.ts';

/** The stanza: pgBackRest's name for the cluster, the same on every stack (the stack's prefix separates them). */
export const STANZA = 'allixios';

/** Where pgBackRest finds its configuration by default, in the project image. */
export const PGBACKREST_CONFIG_PATH = '/etc/pgbackrest/pgbackrest.conf';

/**
 * Where pgBackRest writes on a Kubernetes member, whose root file system is read-only: its lock
 * files in /tmp (an emptyDir), and the spool of asynchronous archiving on the data volume, beside
 * the data directory (not in it: never backed up, never overwritten by a restore). Losing the spool
 * loses nothing (pgBackRest re-checks each segment), but keeping it spares that work after a restart.
 */
export const PGBACKREST_PATHS = { lock: '/tmp/pgbackrest', spool: '/var/lib/postgresql/pgbackrest-spool' } as const;

/** The agent's port (pgBackRest's default for its TLS server). */
export const AGENT_PORT = 8432;

/**
 * PostgreSQL's `archive_timeout`: a WAL segment is switched and archived at least this often while
 * anything is written, so a loss of every member's volume loses at most about this much of
 * committed work (the RPO; the drill measures it). The PostgreSQL documentation calls a minute or so
 * reasonable; each forced switch costs one segment in the repository, compressed to a few KB when
 * it is mostly empty.
 */
export const ARCHIVE_TIMEOUT_SECONDS = 60;

/** Processes a backup (and a restore) compresses, encrypts and transfers with: two, the jobs' CPU limit. */
export const PROCESS_MAX = 2;

/**
 * The client certificate's CN the agents admit (`tls-server-auth`): the engine's certificate's
 * commonName, which is the engine's name (stacks/kubernetes/tls.ts, `certificateArgs`), whose
 * usages include client auth. The backup jobs present that certificate.
 */
export const AGENT_CLIENT_COMMON_NAME = 'postgresql';

/** The variables pgBackRest reads its secrets from (`PGBACKREST_<OPTION>`), never a file or an argument. */
export const PGBACKREST_VARIABLES = {
  cipherPass: 'PGBACKREST_REPO1_CIPHER_PASS',
  accessKeyId: 'PGBACKREST_REPO1_S3_KEY',
  secretAccessKey: 'PGBACKREST_REPO1_S3_KEY_SECRET',
} as const;

/**
 * The repository's passphrase: pgBackRest encrypts every file of the repository with it (through
 * sub-passphrases it keeps, encrypted, in the repository). Without it the backups are unreadable:
 * losing it loses them. Prod sets it in `allixios:passwords.postgresql.backup-cipher-pass`, so that
 * it outlives the stack; a generated one dies with the stack's state.
 */
export const BACKUP_CIPHER_SECRET: SecretDefinition = {
  key: 'backup-cipher-pass',
  description: "pgBackRest's repository passphrase (aes-256-cbc): without it the backups cannot be read; set it in allixios:passwords so it outlives the stack",
  notRotatable:
    'pgBackRest cannot re-encrypt a repository: a new passphrase needs a new repository (another allixios:backups prefix) and a new full backup, while the old repository keeps the old passphrase until it is no longer needed',
};

/** A repository pgBackRest reads and writes: the stack's object store, or a directory (the drill's, a restore from a copy). */
export type PgbackrestRepository = { kind: 'objectStore'; backup: BackupSettings } | { kind: 'posix'; path: string; retention: BackupSettings['retention'] };

/** The PostgreSQL server a configuration is about, as its own host sees it. */
export interface PgbackrestServer {
  /** The data directory (`pg1-path`). */
  data: string;
  /** The directory of its Unix socket: pgBackRest always connects through it. */
  socket: string;
  port: number;
}

/** Where pgBackRest writes: its lock files and, where it archives asynchronously, its spool. */
export interface PgbackrestWritePaths {
  lock: string;
  spool?: string;
}

/**
 * Whose configuration:
 * - `member`: a PostgreSQL member's container (archive-push and archive-get, Patroni's replica
 *   restores, the stanza's creation at bootstrap);
 * - `agent`: the TLS server beside a member. It never touches the repository (the backup job
 *   reads the repository and sends its options to the agent's processes), so its file has no
 *   repository option and its container no secret: a repository option there would even make
 *   the agent's processes ask for the passphrase;
 * - `repository`: a backup job, which runs `backup` with the members as `pg<i>-host` over TLS
 *   (`hosts` literal, or left to `PGBACKREST_PG<i>_HOST` in its environment when only the
 *   running job knows them);
 * - `restore`: a restore into `data` (`restore.ts`).
 */
export type PgbackrestHost =
  | {
      role: 'member';
      server: PgbackrestServer;
      paths: Required<PgbackrestWritePaths>;
      /** `archive-push-queue-max` (`25GB`): see {@link archiveQueueMax}. */
      archiveQueueMax?: string;
    }
  | { role: 'agent'; server: PgbackrestServer; paths: PgbackrestWritePaths; address: string; port: number; tlsDirectory: string; clientCommonName: string }
  | { role: 'repository'; members: number; hosts?: string[]; server: PgbackrestServer; agent: { port: number; tlsDirectory: string }; paths: PgbackrestWritePaths }
  | { role: 'restore'; data: string; paths: Required<PgbackrestWritePaths> };

/** pgbackrest.conf as sections of options: `[global]` and the stanza's. */
export interface PgbackrestConfig {
  global: Record<string, string>;
  stanza: Record<string, string>;
}

/** Object-store settings pgBackRest cannot work with, named with the key that holds them. */
export class BackupSettingsError extends Error {
  constructor(key: string, expected: string, received: unknown) {
    super(`${key}: expected ${expected}, got ${JSON.stringify(received)}`);
    this.name = 'BackupSettingsError';
  }
}

/**
 * The endpoint's host and port: pgBackRest speaks HTTPS only to an object store (it has no plain
 * HTTP), and takes the host and the port as two options.
 */
function endpointOf(endpoint: string): { host: string; port?: number } {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new BackupSettingsError('allixios:backups.objectStore.endpoint', 'an https:// URL of the object store (pgBackRest speaks HTTPS only)', endpoint);
  }
  if (url.protocol !== 'https:' || (url.pathname !== '/' && url.pathname !== '') || url.search || url.username) {
    throw new BackupSettingsError(
      'allixios:backups.objectStore.endpoint',
      'an https:// URL with a host and at most a port (pgBackRest speaks HTTPS only, and takes no path)',
      endpoint,
    );
  }
  return { host: url.hostname, ...(url.port ? { port: Number(url.port) } : {}) };
}

/**
 * Retention, for the hosts that expire (the backup jobs: pgBackRest expires after each backup).
 * pgBackRest keeps full backups either by count or by time, not both: by time, so that the promise
 * holds as written ("any moment of the last <days> days"). A full backup leaves only once a newer
 * one is at least <days> old, so with the weekly full the repository holds days/7 + 1 of them; WAL
 * older than the oldest kept full leaves with it (repo1-retention-archive unset: its default for
 * time retention), so every moment since then can be recovered. `retention.count` is not used.
 */
function retentionOptions(repository: PgbackrestRepository): Record<string, string> {
  const retention = repository.kind === 'objectStore' ? repository.backup.retention : repository.retention;
  if (!Number.isInteger(retention.days) || retention.days < 1) {
    throw new BackupSettingsError('allixios:backups.retention.days', 'a whole number of days of at least 1', retention.days);
  }
  return { 'repo1-retention-full-type': 'time', 'repo1-retention-full': String(retention.days) };
}

function repositoryOptions(repository: PgbackrestRepository): Record<string, string> {
  const common = { 'repo1-cipher-type': 'aes-256-cbc' };
  if (repository.kind === 'posix') {
    if (!repository.path.startsWith('/')) throw new BackupSettingsError('repository path', 'an absolute path', repository.path);
    return { 'repo1-type': 'posix', 'repo1-path': repository.path, ...common };
  }
  const { objectStore, path } = repository.backup;
  if (path === '' || path.startsWith('/') || path.endsWith('/')) {
    throw new BackupSettingsError('the engine backup path (allixios:backups.objectStore.prefix)', 'a prefix without a leading or trailing slash, not empty', path);
  }
  const endpoint = endpointOf(objectStore.endpoint);
  // Google Cloud Storage under Workload Identity: its own repository type, authorised as the pod's
  // service account (S3's web-id is AWS STS's, which Google does not serve).
  if (objectStore.credentials.kind === 'workloadIdentity' && endpoint.host === 'storage.googleapis.com') {
    return { 'repo1-type': 'gcs', 'repo1-gcs-bucket': objectStore.bucket, 'repo1-gcs-key-type': 'auto', 'repo1-path': `/${path}`, ...common };
  }
  return {
    'repo1-type': 's3',
    'repo1-s3-bucket': objectStore.bucket,
    'repo1-s3-endpoint': endpoint.host,
    ...(endpoint.port !== undefined ? { 'repo1-storage-port': String(endpoint.port) } : {}),
    'repo1-s3-region': objectStore.region,
    ...(objectStore.forcePathStyle ? { 'repo1-s3-uri-style': 'path' } : {}),
    // shared: the keys from PGBACKREST_REPO1_S3_KEY(_SECRET); web-id: AWS's web identity (EKS IRSA),
    // from the AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE the pod identity webhook sets.
    'repo1-s3-key-type': objectStore.credentials.kind === 'secret' ? 'shared' : 'web-id',
    'repo1-path': `/${path}`,
    ...common,
  };
}

function serverOptions(index: number, server: PgbackrestServer): Record<string, string> {
  return { [`pg${index}-path`]: server.data, [`pg${index}-socket-path`]: server.socket, [`pg${index}-port`]: String(server.port) };
}

/**
 * One host's pgbackrest.conf, from the stack's backup settings (or a local directory standing in
 * for the object store); the agent's has no repository (see {@link PgbackrestHost}). Pure; throws
 * {@link BackupSettingsError} on settings pgBackRest cannot use.
 */
export function pgbackrestConfig(repository: PgbackrestRepository, host: PgbackrestHost): PgbackrestConfig {
  const common = {
    // Logs go to the container's output (kubectl logs) or, for archive-push, to PostgreSQL's log:
    // no log files on a read-only root file system.
    'log-level-file': 'off',
    'lock-path': host.paths.lock,
  };
  if (host.role === 'agent') {
    return {
      global: {
        ...common,
        'log-level-console': 'info',
        'log-level-stderr': 'off',
        'tls-server-address': host.address,
        'tls-server-port': String(host.port),
        'tls-server-cert-file': `${host.tlsDirectory}/${TLS_FILES.certificate}`,
        'tls-server-key-file': `${host.tlsDirectory}/${TLS_FILES.key}`,
        'tls-server-ca-file': `${host.tlsDirectory}/${TLS_FILES.ca}`,
        // A client is admitted when the stack's CA signed its certificate and its CN is this one, for this stanza only.
        'tls-server-auth': `${host.clientCommonName}=${STANZA}`,
      },
      stanza: serverOptions(1, host.server),
    };
  }
  const global: Record<string, string> = {
    ...repositoryOptions(repository),
    // Zstandard, where files are written to the repository (archive-push, backup): pgBackRest's
    // fastest for its ratio (2.45 has it); level 3, its default. A restore reads what was written.
    ...(host.role === 'restore' ? {} : { 'compress-type': 'zst' }),
    'process-max': String(PROCESS_MAX),
    ...common,
  };
  let stanza: Record<string, string>;
  if (host.role === 'member') {
    Object.assign(global, {
      // archive-push runs for every segment: only what goes wrong reaches PostgreSQL's log.
      'log-level-console': 'off',
      'log-level-stderr': 'warn',
      // The archiver's command returns as soon as a background process has the segment in the
      // repository, pushing several at once; archive-get prefetches during a replica's recovery.
      'archive-async': 'y',
      'spool-path': host.paths.spool,
      ...(host.archiveQueueMax ? { 'archive-push-queue-max': host.archiveQueueMax } : {}),
    });
    stanza = serverOptions(1, host.server);
  } else if (host.role === 'repository') {
    if (!Number.isInteger(host.members) || host.members < 1) throw new BackupSettingsError('repository members', 'a whole number of at least 1', host.members);
    if (host.hosts && host.hosts.length !== host.members) throw new BackupSettingsError('repository hosts', `one host per member (${host.members})`, host.hosts);
    Object.assign(global, {
      ...retentionOptions(repository),
      'log-level-console': 'info',
      'log-level-stderr': 'off',
      // A checkpoint at once rather than a spread one (up to 0.9 × checkpoint_timeout of waiting).
      'start-fast': 'y',
      // From the primary: with y every backup would need a standby up and streaming (a member down
      // for maintenance at 01:00 would cost the night's backup), and pgBackRest 2.45 has no "prefer".
      // The night's read load on the primary is the price.
      'backup-standby': 'n',
    });
    stanza = {};
    for (let index = 1; index <= host.members; index++) {
      Object.assign(stanza, {
        ...(host.hosts ? { [`pg${index}-host`]: host.hosts[index - 1]! } : {}),
        [`pg${index}-host-type`]: 'tls',
        [`pg${index}-host-port`]: String(host.agent.port),
        [`pg${index}-host-cert-file`]: `${host.agent.tlsDirectory}/${TLS_FILES.certificate}`,
        [`pg${index}-host-key-file`]: `${host.agent.tlsDirectory}/${TLS_FILES.key}`,
        [`pg${index}-host-ca-file`]: `${host.agent.tlsDirectory}/${TLS_FILES.ca}`,
        ...serverOptions(index, host.server),
      });
    }
  } else {
    Object.assign(global, { 'log-level-console': 'info', 'log-level-stderr': 'off', 'archive-async': 'y', 'spool-path': host.paths.spool });
    stanza = { 'pg1-path': host.data };
  }
  return { global, stanza };
}

/** pgbackrest.conf's text. */
export function pgbackrestConf(config: PgbackrestConfig): string {
  const section = (name: string, options: Record<string, string>) => [`[${name}]`, ...Object.entries(options).map(([key, value]) => `${key}=${value}`)].join('\n');
  return [
    '# Rendered by databases/postgresql/backup.ts. No secret here: the repository passphrase and the',
    `# object store's keys come from the environment (${Object.values(PGBACKREST_VARIABLES).join(', ')}).`,
    section('global', config.global),
    '',
    section(STANZA, config.stanza),
    '',
  ].join('\n');
}

/**
 * PostgreSQL's archiving settings (Patroni's parameters when backups are on; the drill's server):
 * with `archive_mode = on` only the primary archives (a standby archives only with `always`), so a
 * failover hands archiving to the new primary with no double pushes; the command has no option but
 * the stanza (the configuration is the default file, the secrets the environment).
 */
export function archiveParameters(): { archive_mode: string; archive_command: string; archive_timeout: string } {
  return { archive_mode: 'on', archive_command: `pgbackrest --stanza=${STANZA} archive-push "%p"`, archive_timeout: `${ARCHIVE_TIMEOUT_SECONDS}s` };
}

/** What a replica (and any recovery) fetches missing WAL with: the repository fills what streaming cannot. */
export const RESTORE_COMMAND = `pgbackrest --stanza=${STANZA} archive-get %f "%p"`;

/**
 * Patroni's replica method that restores a new or re-cloned member from the repository (Patroni's
 * documentation, "Building replicas"): `--delta` keeps the files that did not change (a re-clone of
 * a diverged member copies only what differs), `keep_data` keeps Patroni from emptying the data
 * directory first, `no_params` keeps it from adding its own arguments, which pgBackRest refuses.
 */
export const PGBACKREST_REPLICA_METHOD = { command: `pgbackrest --stanza=${STANZA} --delta restore`, keep_data: true, no_params: true } as const;

/**
 * `archive-push-queue-max`: the most WAL the primary keeps waiting for the repository (an object
 * store unreachable for hours) before pgBackRest drops it and tells PostgreSQL it is archived. A
 * gap in the archive (point-in-time recovery impossible across it until the next backup) is the
 * lesser harm than a full volume, which stops PostgreSQL. A quarter of the volume, as the
 * replication slots' `max_slot_wal_keep_size` (patroni.ts): the two together leave half of it.
 */
export function archiveQueueMax(storageBytes: number): string {
  return `${Math.max(1, Math.floor(storageBytes / 4 / 2 ** 30))}GB`;
}

/** What the engine's description gives {@link postgresqlBackup}. */
export interface PostgresqlBackupInput {
  /** The engine's name: its members are `<name>-<i>` under the headless Service `<name>-headless`. */
  engine: string;
  backup: BackupSettings;
  members: number;
  /** The data volume's size in bytes (the archive queue's bound). */
  storageBytes: number;
  /** The server as the member's containers see it. */
  server: PgbackrestServer;
  /** The engine's TLS directory (the agent's certificate, and the jobs' client certificate). */
  tlsDirectory: string;
}

/** The job's resources: pgBackRest's processes compress and encrypt, a buffer each. */
const JOB_RESOURCES: ComputeResources = { requests: { cpu: '250m', memory: '128Mi' }, limits: { cpu: String(PROCESS_MAX), memory: '512Mi' } };
/** The agent's: it reads and sends the files (compressing them on the member's side), at night. */
const AGENT_RESOURCES: ComputeResources = { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '1', memory: '256Mi' } };

/** The object store's keys (absent under workload identity) and the repository's passphrase, from the environment. */
function secretEnvironment(backup: BackupSettings): Record<string, BackupEnvValue> {
  return {
    [PGBACKREST_VARIABLES.cipherPass]: { secret: BACKUP_CIPHER_SECRET.key },
    ...(backup.objectStore.credentials.kind === 'secret'
      ? { [PGBACKREST_VARIABLES.accessKeyId]: { objectStore: 'accessKeyId' }, [PGBACKREST_VARIABLES.secretAccessKey]: { objectStore: 'secretAccessKey' } }
      : {}),
  };
}

/** The variable a job may be given the namespace's DNS domain in (`<namespace>.svc.<cluster domain>`). */
export const NAMESPACE_DOMAIN_VARIABLE = 'ALLIXIOS_NAMESPACE_DOMAIN';

/**
 * A backup job's script: the members' stable names (which their certificate carries, so the TLS
 * client verifies them) as `PGBACKREST_PG<i>_HOST`, built from the namespace's DNS domain, then the
 * stanza (idempotent: created at bootstrap, or now on a cluster that had backups turned on later),
 * then the backup, after which pgBackRest expires what retention allows. The domain comes from
 * {@link NAMESPACE_DOMAIN_VARIABLE} where the target sets it, else from the pod's resolv.conf,
 * whose first search domain Kubernetes writes as `<namespace>.svc.<cluster domain>`.
 */
export function backupScript(engine: string, members: number, type: 'full' | 'diff'): string {
  const exports = Array.from({ length: members }, (_, index) => `export PGBACKREST_PG${index + 1}_HOST="${engine}-${index}.${engine}-headless.$domain"`);
  return [
    'set -eu',
    `domain="\${${NAMESPACE_DOMAIN_VARIABLE}:-}"`,
    `[ -n "$domain" ] || domain=$(awk '$1 == "search" { print $2; exit }' /etc/resolv.conf)`,
    `case "$domain" in *.svc.*) ;; *) echo ${shellQuote(`${engine}-backup-${type}: cannot tell the namespace's DNS domain: ${NAMESPACE_DOMAIN_VARIABLE} is unset and the first search domain of /etc/resolv.conf is`)} "\\"$domain\\", expected <namespace>.svc.<cluster domain>" >&2; exit 1 ;; esac`,
    ...exports,
    `pgbackrest --stanza=${STANZA} stanza-create`,
    `exec pgbackrest --stanza=${STANZA} --type=${type} backup`,
  ].join('\n');
}

/**
 * The agent's health: the TLS server answers (`server-ping`, which authenticates nothing). It also
 * hands the server a renewed certificate: pgBackRest's server re-reads its TLS files on SIGHUP
 * (seen with 2.45), and is PID 1 of its container, so the check signals it whenever the mounted
 * files' checksum differs from the one it signalled for last (the first check signals once, which
 * is harmless).
 */
export function agentHealthCommand(tlsDirectory: string, port = AGENT_PORT, stateDirectory = PGBACKREST_PATHS.lock): string[] {
  const files = [TLS_FILES.certificate, TLS_FILES.key, TLS_FILES.ca].map((file) => shellQuote(`${tlsDirectory}/${file}`)).join(' ');
  const state = shellQuote(`${stateDirectory}/agent-tls-loaded`);
  return [
    'sh',
    '-c',
    [
      `loaded=$(cat ${files} | cksum)`,
      `if [ "$loaded" != "$(cat ${state} 2>/dev/null)" ]; then mkdir -p ${shellQuote(stateDirectory)} && kill -HUP 1 && printf '%s' "$loaded" > ${state}; fi`,
      `exec pgbackrest --tls-server-address=localhost --tls-server-port=${port} server-ping`,
    ].join('\n'),
  ];
}

/** The member's pgbackrest.conf (archiving, replicas from the repository) as a config file of the engine. */
export function memberConfigFile(input: PostgresqlBackupInput): ConfigFile & { content: string } {
  const config = pgbackrestConfig(
    { kind: 'objectStore', backup: input.backup },
    { role: 'member', server: input.server, paths: PGBACKREST_PATHS, archiveQueueMax: archiveQueueMax(input.storageBytes) },
  );
  return { source: 'pgbackrest/member.conf', content: pgbackrestConf(config), mountPath: PGBACKREST_CONFIG_PATH };
}

/** The agent's pgbackrest.conf: its TLS server and the member's server, no repository. */
export function agentConfigFile(input: PostgresqlBackupInput): ConfigFile & { content: string } {
  const config = pgbackrestConfig(
    { kind: 'objectStore', backup: input.backup },
    {
      role: 'agent',
      server: input.server,
      paths: { lock: PGBACKREST_PATHS.lock },
      address: '*',
      port: AGENT_PORT,
      tlsDirectory: input.tlsDirectory,
      clientCommonName: AGENT_CLIENT_COMMON_NAME,
    },
  );
  return { source: 'pgbackrest/agent.conf', content: pgbackrestConf(config), mountPath: PGBACKREST_CONFIG_PATH };
}

const JOB_DESCRIPTIONS = {
  full: 'pgBackRest full backup of every file, from the primary through its agent, then expiry of what is past retention',
  diff: 'pgBackRest differential backup (the files changed since the last full one), then expiry of what is past retention',
} as const;

/**
 * The engine's backup on a Kubernetes stack: the jobs, the agent beside each member, and what the
 * members need to archive (their pgbackrest.conf itself is {@link memberConfigFile}, which Patroni's
 * description mounts).
 */
export function postgresqlBackup(input: PostgresqlBackupInput): BackupSpec {
  const repository = pgbackrestConfig(
    { kind: 'objectStore', backup: input.backup },
    { role: 'repository', members: input.members, server: input.server, agent: { port: AGENT_PORT, tlsDirectory: input.tlsDirectory }, paths: { lock: PGBACKREST_PATHS.lock } },
  );
  const jobConfig = { source: 'pgbackrest/repository.conf', mountPath: PGBACKREST_CONFIG_PATH, content: pgbackrestConf(repository) };
  const jobs: BackupJob[] = (['full', 'diff'] as const).map((type) => {
    const schedule = input.backup.schedules[type];
    if (!schedule) throw new BackupSettingsError(`allixios:backups.schedules.${input.engine}.${type}`, 'a cron schedule (the engine has a default)', schedule);
    return {
      name: type,
      description: JOB_DESCRIPTIONS[type],
      schedule,
      command: ['sh', '-c', backupScript(input.engine, input.members, type)],
      // The members' names are <pod>.<headless Service>.<namespace domain>.
      env: { ...secretEnvironment(input.backup), [NAMESPACE_DOMAIN_VARIABLE]: { cluster: 'namespaceDomain' } },
      configFiles: [jobConfig],
      resources: JOB_RESOURCES,
      // A full backup of prod's 100Gi at a slow 20 MB/s takes under an hour and a half.
      deadlineSeconds: type === 'full' ? 4 * 3600 : 2 * 3600,
    };
  });
  const retention = input.backup.retention.days;
  return {
    tool: 'pgBackRest',
    // pgBackRest expires by the retention's days after each backup (repo1-retention-full-type=time).
    expiresItself: true,
    recoveryPoint:
      `any moment of the last ${retention} days (point-in-time recovery from the nearest backup and the archived WAL); ` +
      `losing every member loses at most the WAL not yet archived: about ${ARCHIVE_TIMEOUT_SECONDS} s of commits (archive_timeout), more while the object store is unreachable`,
    jobs,
    memberEnv: { ...secretEnvironment(input.backup), ALLIXIOS_BACKUP_STANZA: STANZA },
    agent: {
      name: 'pgbackrest',
      command: ['pgbackrest', 'server'],
      port: { name: 'pgbackrest', containerPort: AGENT_PORT },
      // Nothing secret: the agent reads the data directory and talks to PostgreSQL over the socket,
      // never to the repository.
      env: {},
      configFiles: [agentConfigFile(input)],
      resources: AGENT_RESOURCES,
      healthCommand: agentHealthCommand(input.tlsDirectory),
    },
  };
}
