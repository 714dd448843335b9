/**
 * The PostgreSQL server as the project runs it, whatever starts it (the official image's
 * entrypoint, or Patroni: `patroni.ts`): its command-line settings, health check, TLS and the
 * settings the platform's connections pin. `index.ts` describes the engine with them, `patroni.ts`
 * and `pgbouncer.ts` share them.
 */
import { memoryBytes, TLS_FILES, type TlsSpec } from '../engine.ts';

/** Where the roles script finds the verifiers of the platform's roles (a secret file). */
export const ROLE_VERIFIERS_PATH = '/etc/postgresql/secrets/role-verifiers';
/** The superuser's password, for the image's POSTGRES_PASSWORD_FILE (a secret file). */
export const SUPERUSER_PASSWORD_PATH = '/etc/postgresql/secrets/superuser-password';

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
export const TLS: TlsSpec = {
  directory: TLS_DIRECTORY,
  reload: { command: ['psql', '--no-psqlrc', '--quiet', '--host=/var/run/postgresql', '--username=postgres', '--dbname=allixios', '--command=SELECT pg_reload_conf()'] },
};

/**
 * The TLS form of the platform's and the bootstrap's URLs: verify the chain and the host name
 * against the stack's CA bundle. node-postgres (pg-connection-string) reads `sslrootcert`'s file,
 * and treats `verify-full` as full verification without libpq-compatibility caveats.
 */
export const CONNECTION_TLS = { query: 'sslmode=verify-full', caFileParameter: 'sslrootcert' };

/** An eighth of the memory limit, at least 64Mi, for /dev/shm. */
export function sharedMemorySize(memoryLimit: string): string {
  return `${Math.max(64, Math.floor(memoryBytes(memoryLimit) / 2 ** 20 / 8))}Mi`;
}
