/**
 * PgBouncer in front of the PostgreSQL primary, as the project renders it: `pgbouncer.ini` and its
 * auth file. The platform's `DATABASE_URL` goes through it; the bootstrap (whose advisory lock
 * and settings live in its session) and reporting connect to the primary directly.
 *
 * What it is (databases/postgresql/README.md, "Connection pooling (PgBouncer)"):
 * - transaction pooling, for the application role only (`allixios_app`);
 * - SCRAM-SHA-256 without a clear-text password anywhere: the auth file holds the verifier the
 *   server stores, and PgBouncer (>= 1.14) logs in to the server with the keys the client proved;
 * - the settings the application's URL pins as startup options (`APP_SESSION_OPTIONS`), which
 *   PgBouncer 1.18 cannot pass on, applied by PgBouncer itself on every server connection it
 *   opens (`connect_query`) and again after every transaction (`server_reset_query`, run always),
 *   so that nothing one client sets for its session reaches the next;
 * - pool sizes derived from `max_connections` in config/postgresql.conf and the roles'
 *   connection limits in initdb/10-roles.sh ({@link connectionBudget}, {@link poolSizes}).
 *
 * Written for PgBouncer 1.18 (Debian 12, what the tests run): every key it renders is one the
 * 1.18 manual documents (test/engines/pgbouncer-config.test.ts). `max_prepared_statements`
 * (named prepared statements in transaction mode) exists from 1.21 on only; the platform uses
 * unnamed statements, node-postgres' default.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { moduleDirectory, TLS_FILES, type ComputeResources, type Environment, type PoolerSpec } from '../engine.ts';
import { renderSecretFile } from '../secret-files.ts';
import { APP_SESSION_OPTIONS } from './server.ts';

const DIRECTORY = moduleDirectory(import.meta.url);

/** The database PgBouncer serves, the same name on both sides. */
const DATABASE = 'allixios';
/** The only role whose connections PgBouncer pools. */
export const POOLED_ROLE = 'allixios_app';
/** The console user of the metrics exporter (`stats_users`): read-only SHOW commands, no admin. */
export const STATS_USER = 'pgbouncer_stats';

/** Secrets PgBouncer's files name beside the engine's own (`app-password`). */
export const PGBOUNCER_SECRETS = [{ key: 'pgbouncer-stats-password', description: `${STATS_USER}, PgBouncer's console user for SHOW STATS/POOLS (the metrics exporter)` }] as const;

/** Where PgBouncer's container finds its files (the paths the rendered ini names). */
export const PGBOUNCER_PATHS = {
  /** The rendered {@link renderPgBouncerIni} (a ConfigMap: it holds no secret). */
  config: '/etc/pgbouncer/pgbouncer.ini',
  /** The rendered {@link renderPgBouncerUserlist} (a Secret: verifiers). */
  authFile: '/etc/pgbouncer/secrets/userlist.txt',
  /** With TLS: the stack's certificate, key and CA (`tls.crt`, `tls.key`, `ca.crt`), mounted as a directory. */
  tlsDirectory: '/etc/pgbouncer/tls',
} as const;

/** PgBouncer's port, its conventional one. */
export const PGBOUNCER_PORT = 6432;

/** PgBouncer replicas per environment: two where a node drain must not cut the application off. */
export const PGBOUNCER_REPLICAS: Readonly<Record<Environment, number>> = { dev: 1, ephemeral: 1, staging: 2, prod: 2 };

/**
 * Server connections kept out of the application's share besides the roles' own limits: the
 * metrics exporter (postgres_exporter opens one or two) and an operator's psql. WAL senders
 * (replication) have their own slots since PostgreSQL 12 (`max_wal_senders`), outside
 * `max_connections`.
 */
export const MONITORING_CONNECTIONS = 5;

/** How many server connections each part of the platform may hold, from the project's files. */
export interface ConnectionBudget {
  /** `max_connections` of config/postgresql.conf. */
  maxConnections: number;
  /** `superuser_reserved_connections` + `reserved_connections` (PostgreSQL's defaults 3 and 0 unless postgresql.conf sets them). */
  reserved: number;
  /** `CONNECTION LIMIT` of allixios_owner: the bootstrap and data migrations, directly on the primary. */
  owner: number;
  /** `CONNECTION LIMIT` of allixios_readonly: reporting, directly on the primary. */
  readonly: number;
  /** {@link MONITORING_CONNECTIONS}. */
  monitoring: number;
  /** `CONNECTION LIMIT` of allixios_app. */
  appRoleLimit: number;
  /** What the application's pools may hold in all: the smaller of its role's limit and what is left. */
  app: number;
}

function setting(conf: string, name: string): string | undefined {
  return new RegExp(`^\\s*${name}\\s*=\\s*'?([^'#\\s]+)'?`, 'm').exec(conf)?.[1];
}

function connectionLimit(rolesScript: string, role: string): number {
  const found = new RegExp(`^ALTER ROLE ${role} CONNECTION LIMIT (\\d+);`, 'm').exec(rolesScript)?.[1];
  if (found === undefined) throw new Error(`databases/postgresql/initdb/10-roles.sh sets no CONNECTION LIMIT for ${role}; PgBouncer's pool sizes are derived from it`);
  return Number(found);
}

/**
 * The server's connection slots as the project's files share them out:
 * `app = min(appRoleLimit, maxConnections − reserved − owner − readonly − monitoring)`.
 */
export function connectionBudget(files: { postgresqlConf?: string; rolesScript?: string } = {}): ConnectionBudget {
  const conf = files.postgresqlConf ?? readFileSync(join(DIRECTORY, 'config', 'postgresql.conf'), 'utf8');
  const roles = files.rolesScript ?? readFileSync(join(DIRECTORY, 'initdb', '10-roles.sh'), 'utf8');
  const maxConnections = Number(setting(conf, 'max_connections'));
  if (!Number.isInteger(maxConnections) || maxConnections <= 0)
    throw new Error("databases/postgresql/config/postgresql.conf sets no max_connections; PgBouncer's pool sizes are derived from it");
  const reserved = Number(setting(conf, 'superuser_reserved_connections') ?? 3) + Number(setting(conf, 'reserved_connections') ?? 0);
  const owner = connectionLimit(roles, 'allixios_owner');
  const readonly = connectionLimit(roles, 'allixios_readonly');
  const appRoleLimit = connectionLimit(roles, POOLED_ROLE);
  const left = maxConnections - reserved - owner - readonly - MONITORING_CONNECTIONS;
  return { maxConnections, reserved, owner, readonly, monitoring: MONITORING_CONNECTIONS, appRoleLimit, app: Math.min(appRoleLimit, left) };
}

/** The pool sizes of one PgBouncer replica. */
export interface PoolSizes {
  /** Hard cap of server connections of this replica to the database (`max_db_connections`). */
  maxDbConnections: number;
  /** Server connections per pool, opened on demand (`default_pool_size`). */
  defaultPoolSize: number;
  /** Extra connections a pool may open when a client waited `reserve_pool_timeout` (`reserve_pool_size`). */
  reservePoolSize: number;
}

/**
 * Each replica's share: `maxDbConnections = floor(app / (replicas + maxSurge))`. A rolling update
 * runs `maxSurge` replicas more for a while (the Deployment's default is 25%, at least 1), each
 * with full pools: counted, so that even then the replicas' pools fit into the application's
 * share of the server. The reserve is a tenth of it (at least 1), and default + reserve is the cap.
 */
export function poolSizes(replicas: number, maxSurge = 1, budget: ConnectionBudget = connectionBudget()): PoolSizes {
  if (!Number.isInteger(replicas) || replicas < 1) throw new Error(`PgBouncer replicas must be a positive integer, got ${replicas}`);
  if (!Number.isInteger(maxSurge) || maxSurge < 0) throw new Error(`PgBouncer maxSurge must be a non-negative integer, got ${maxSurge}`);
  const maxDbConnections = Math.floor(budget.app / (replicas + maxSurge));
  if (maxDbConnections < 2)
    throw new Error(`${replicas} PgBouncer replica(s) (+${maxSurge} during a rollout) leave each fewer than 2 of the application's ${budget.app} server connections`);
  const reservePoolSize = Math.max(1, Math.floor(maxDbConnections / 10));
  return { maxDbConnections, defaultPoolSize: maxDbConnections - reservePoolSize, reservePoolSize };
}

/**
 * The settings the application's URL pins (APP_SESSION_OPTIONS, `-c name=value`), as SET
 * statements: what PgBouncer runs on each new server connection and after each transaction.
 */
export function pinnedSettings(options = APP_SESSION_OPTIONS): string {
  const pairs = [...options.matchAll(/-c ([a-z_]+)=(\S+)/g)].map(([, name, value]) => `SET ${name} = '${value}'`);
  if (pairs.length === 0) throw new Error('APP_SESSION_OPTIONS holds no -c setting');
  return pairs.join('; ');
}

/**
 * What PgBouncer runs on a server connection after every transaction (server_reset_query_always):
 * DISCARD ALL's parts (DISCARD ALL itself refuses the implicit transaction of a multi-statement
 * query), without the advisory unlock the application role may not call (and holds no advisory
 * lock to release) and without DISCARD PLANS (the policies' cached plans are the same for every
 * client), then the pinned settings again. A session-level SET or set_config(..., false), a
 * named prepared statement, a WITH HOLD cursor or a LISTEN of one client ends with its
 * transaction instead of reaching the next client on that server connection.
 */
export function serverResetQuery(): string {
  return `CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; DEALLOCATE ALL; UNLISTEN *; DISCARD TEMP; DISCARD SEQUENCES; ${pinnedSettings()}`;
}

/** A value of a `[databases]` connection string: single-quoted, quotes doubled. */
function quoted(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

export interface PgBouncerIniOptions {
  /** The primary as PgBouncer reaches it (the engine's Service); with TLS, a name its certificate carries. */
  primaryHost: string;
  /** Default 5432. */
  primaryPort?: number;
  /** PgBouncer replicas ({@link PGBOUNCER_REPLICAS}). */
  replicas: number;
  /** Replicas a rolling update adds for a while (the Deployment's maxSurge); default 1. */
  maxSurge?: number;
  /** Whether the stack serves TLS: clients must use it, and PgBouncer verifies the primary (verify-full). */
  tls: boolean;
  /** Default {@link PGBOUNCER_PORT}. */
  listenPort?: number;
  /** Default `*` (inside a container). */
  listenAddress?: string;
  /** Default {@link PGBOUNCER_PATHS}; the tests map them into a temporary folder. */
  paths?: { authFile?: string; tlsDirectory?: string };
  /** Where to log; default none (stderr, which the container runtime collects). */
  logFile?: string;
  /**
   * Whether the reset runs after every transaction (default true). False is PgBouncer's own
   * default for transaction pooling, rendered only so the drill and the benchmark can show what
   * it costs and what it lets through; never deployed.
   */
  resetAfterEveryTransaction?: boolean;
  /** The connection budget; default {@link connectionBudget} from the project's files. */
  budget?: ConnectionBudget;
  /** Pool sizes instead of {@link poolSizes}'s (the drill's pool of 5); never for a deployment. */
  sizes?: PoolSizes;
}

/**
 * `pgbouncer.ini` for one replica. Mount it at {@link PGBOUNCER_PATHS.config} and run
 * `pgbouncer /etc/pgbouncer/pgbouncer.ini` (in the foreground, not as root); the auth file at
 * `paths.authFile`; with `tls`, the stack's TLS directory at `paths.tlsDirectory`. SIGHUP (or
 * RELOAD from an admin) re-reads the file, the auth file and the certificates.
 */
export function renderPgBouncerIni(options: PgBouncerIniOptions): string {
  const paths: { authFile: string; tlsDirectory: string } = { ...PGBOUNCER_PATHS, ...options.paths };
  const budget = options.budget ?? connectionBudget();
  const maxSurge = options.maxSurge ?? 1;
  const sizes = options.sizes ?? poolSizes(options.replicas, maxSurge, budget);
  const reset = options.resetAfterEveryTransaction ?? true;
  const tls = (name: keyof typeof TLS_FILES) => `${paths.tlsDirectory}/${TLS_FILES[name]}`;
  const lines = [
    '; PgBouncer for Allixios, rendered by databases/postgresql/pgbouncer.ts: edit that file, not this one.',
    '; databases/postgresql/README.md, "Connection pooling (PgBouncer)", says why each setting is what it is.',
    '',
    '[databases]',
    // No user or password: each client's own login (SCRAM pass-through) reaches the server. The
    // pinned settings on every new server connection; the reset (below) brings them back after
    // each transaction.
    `${DATABASE} = host=${options.primaryHost} port=${options.primaryPort ?? 5432} dbname=${DATABASE} connect_query=${quoted(pinnedSettings())}`,
    '',
    '[users]',
    // The only pooled role; whoever else logs in (nobody is in the auth file besides the console
    // user) is refused by authentication.
    `${POOLED_ROLE} = pool_mode=transaction`,
    '',
    '[pgbouncer]',
    `listen_addr = ${options.listenAddress ?? '*'}`,
    `listen_port = ${options.listenPort ?? PGBOUNCER_PORT}`,
    // No Unix socket: the read-only root file system has no place for it, and nothing local connects.
    'unix_socket_dir =',
    ...(options.logFile ? [`logfile = ${options.logFile}`] : []),
    '',
    '; Authentication: SCRAM verifiers only (the auth file), and PgBouncer logs in to the server',
    '; with the keys the client proved, which works because the server stores the same verifier.',
    'auth_type = scram-sha-256',
    `auth_file = ${paths.authFile}`,
    '; No admin over the network (reload with SIGHUP); the exporter reads SHOW STATS/POOLS.',
    'admin_users =',
    `stats_users = ${STATS_USER}`,
    '',
    '; Transaction pooling: a server connection belongs to a client for one transaction.',
    'pool_mode = transaction',
    reset
      ? '; After every transaction (not only in session mode): nothing a client set for its session reaches the next.'
      : "; PgBouncer's default for transaction pooling: no reset (the drill and the benchmark only, never deployed).",
    `server_reset_query = ${serverResetQuery()}`,
    `server_reset_query_always = ${reset ? 1 : 0}`,
    // node-postgres sends user, database, client_encoding, application_name and, from the
    // platform's URL, options (the pinned settings, which connect_query and the reset apply
    // instead); extra_float_digits is what JDBC and other drivers send. Anything else is refused.
    'ignore_startup_parameters = options,extra_float_digits',
    '',
    `; Pool sizes (poolSizes()): of max_connections ${budget.maxConnections}, the application may hold ${budget.app} server connections`,
    `; (the smaller of its role's limit ${budget.appRoleLimit} and ${budget.maxConnections} - ${budget.reserved} reserved - ${budget.owner} bootstrap - ${budget.readonly} reporting - ${budget.monitoring} monitoring);`,
    `; ${options.replicas} replica(s), ${maxSurge} more during a rollout: each at most floor(${budget.app} / ${options.replicas + maxSurge}).`,
    `max_db_connections = ${sizes.maxDbConnections}`,
    `default_pool_size = ${sizes.defaultPoolSize}`,
    `reserve_pool_size = ${sizes.reservePoolSize}`,
    'reserve_pool_timeout = 3',
    'max_client_conn = 1000',
    '; A client waits at most this long for a server connection, then gets an error instead of hanging.',
    'query_wait_timeout = 30',
    '; The server enforces idle_in_transaction_session_timeout too (30 s for the role); this frees the pool as well.',
    'idle_transaction_timeout = 30',
    'server_connect_timeout = 5',
    'server_login_retry = 5',
    'server_idle_timeout = 300',
    'server_lifetime = 3600',
    'tcp_keepalive = 1',
    'tcp_keepidle = 60',
    'tcp_keepintvl = 10',
    'tcp_keepcnt = 6',
    '',
    'log_connections = 0',
    'log_disconnections = 0',
    'log_pooler_errors = 1',
    'stats_period = 60',
    ...(options.tls
      ? [
          '',
          "; TLS: clients must use it, with the stack's certificate (its names must include PgBouncer's Service);",
          "; PgBouncer verifies the primary's certificate and host name with the stack's CA.",
          'client_tls_sslmode = require',
          `client_tls_cert_file = ${tls('certificate')}`,
          `client_tls_key_file = ${tls('key')}`,
          'client_tls_protocols = tlsv1.2,tlsv1.3',
          'server_tls_sslmode = verify-full',
          `server_tls_ca_file = ${tls('ca')}`,
          'server_tls_protocols = tlsv1.2,tlsv1.3',
        ]
      : []),
    '',
  ];
  return lines.join('\n');
}

/** The auth file's template (databases/postgresql/pgbouncer/userlist.txt). */
export const USERLIST_SOURCE = 'pgbouncer/userlist.txt';

/**
 * The auth file, rendered from its template with the engine's secrets plus
 * {@link PGBOUNCER_SECRETS}: `app-password` and `pgbouncer-stats-password`. Holds SCRAM
 * verifiers only; mount it from a Secret at {@link PGBOUNCER_PATHS.authFile}. The template's
 * comments are left out: PgBouncer 1.18 knows none in this file, logs "broken auth file" at the
 * first and admits nobody (seen in the drill), yet starts.
 */
export function renderPgBouncerUserlist(secrets: Readonly<Record<string, string>>): string {
  const template = readFileSync(join(DIRECTORY, USERLIST_SOURCE), 'utf8');
  const entries = template
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('#'))
    .join('\n');
  return `${renderSecretFile(entries, secrets, `databases/postgresql/${USERLIST_SOURCE}`)}\n`;
}

/** PgBouncer's resources per replica: a single-threaded process, small buffers (pkt_buf 4 KiB per connection). */
const PGBOUNCER_RESOURCES: Readonly<Record<Environment, ComputeResources>> = {
  dev: { requests: { cpu: '50m', memory: '32Mi' }, limits: { cpu: '500m', memory: '128Mi' } },
  ephemeral: { requests: { cpu: '50m', memory: '32Mi' }, limits: { cpu: '500m', memory: '128Mi' } },
  staging: { requests: { cpu: '100m', memory: '64Mi' }, limits: { cpu: '1', memory: '256Mi' } },
  prod: { requests: { cpu: '500m', memory: '128Mi' }, limits: { cpu: '1', memory: '256Mi' } },
};

/**
 * Whether PgBouncer answers on its port, from inside its container (exit 0: it asked for a
 * password, which is all an unauthenticated probe can get). TLS is negotiated when PgBouncer
 * requires it (libpq's default sslmode=prefer); the server behind it is not involved.
 */
export function pgbouncerReady(port = PGBOUNCER_PORT): string[] {
  return ['pg_isready', '--host=127.0.0.1', `--port=${port}`, `--username=${POOLED_ROLE}`, `--dbname=${DATABASE}`];
}

/**
 * PgBouncer as the Kubernetes target runs it in front of the primary (`PoolerSpec`): from the
 * project image (which installs it beside Patroni), as its postgres user, reaching the primary
 * by its Service's name (`primaryHost`: the engine's name, a name the engine's certificate
 * carries), with the ini and the auth file rendered above. On a TLS stack its own certificate,
 * re-read on SIGHUP.
 */
export function pgbouncerPooler(settings: { environment: Environment; tls: boolean; primaryHost: string; image: { repository: string; tag: string } }): PoolerSpec {
  const replicas = PGBOUNCER_REPLICAS[settings.environment];
  return {
    name: 'pgbouncer',
    image: settings.image,
    command: ['pgbouncer', PGBOUNCER_PATHS.config],
    replicas,
    port: { name: 'pgbouncer', containerPort: PGBOUNCER_PORT },
    runAs: { user: 999, group: 999 },
    resources: PGBOUNCER_RESOURCES[settings.environment],
    configFiles: [
      { source: 'pgbouncer/pgbouncer.ini', content: renderPgBouncerIni({ primaryHost: settings.primaryHost, replicas, tls: settings.tls }), mountPath: PGBOUNCER_PATHS.config },
    ],
    secretFiles: [{ source: USERLIST_SOURCE, mountPath: PGBOUNCER_PATHS.authFile }],
    healthCheck: { command: pgbouncerReady(), intervalSeconds: 10, timeoutSeconds: 5, failureThreshold: 3, startupSeconds: 30 },
    carries: ['app'],
    ...(settings.tls ? { tls: { directory: PGBOUNCER_PATHS.tlsDirectory } } : {}),
    // SIGHUP to PgBouncer (PID 1): it re-reads pgbouncer.ini, the auth file (a rotated password's
    // verifier) and its TLS files; open connections stay.
    reload: { command: ['sh', '-c', 'kill -HUP 1'] },
  };
}
