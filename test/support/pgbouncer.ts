/**
 * A real PgBouncer (Debian's `pgbouncer`, installed by .ci/run) in front of a test server. It runs
 * as the OS user postgres (PgBouncer refuses root), in a folder of its own, on a free port.
 *
 * - {@link startPgBouncer}: a minimal one (clients trusted, PgBouncer logs in with the role's
 *   password), for the tests of what the bootstrap does behind a connection pooler.
 * - {@link startProjectPgBouncer}: the project's own configuration (databases/postgresql/pgbouncer.ts)
 *   and auth file rendered from test passwords, with only the ports and paths mapped.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../bootstrap/embedded/postgresql.ts';
import { renderPgBouncerIni, renderPgBouncerUserlist, POOLED_ROLE, STATS_USER, type PgBouncerIniOptions } from '../../databases/postgresql/pgbouncer.ts';

export interface PgBouncer {
  /** `postgresql://<user>@127.0.0.1:<port>/<database>` through the pooler. */
  url: string;
  stop(): Promise<void>;
}

export function requirePgBouncer(): string {
  const found = spawnSync('sh', ['-c', 'command -v pgbouncer'], { encoding: 'utf8' }).stdout.trim();
  if (!found) throw new Error('pgbouncer is not on PATH: install it (apt-get install -y pgbouncer); the pooler tests cannot run without it');
  return found;
}

/** Starts PgBouncer in `poolMode` in front of `serverUrl` (a URL with the role's password). */
export async function startPgBouncer(serverUrl: string, options: { poolMode?: 'transaction' | 'session'; ignoreStartupParameters?: string } = {}): Promise<PgBouncer> {
  const binary = requirePgBouncer();
  const server = new URL(serverUrl);
  const database = server.pathname.slice(1);
  const user = decodeURIComponent(server.username);
  const directory = mkdtempSync(join(tmpdir(), 'allixios-pgbouncer-'));
  chmodSync(directory, 0o777);
  const port = await freePort();
  const config = join(directory, 'pgbouncer.ini');
  // With auth_type trust a user must still be listed in the auth file.
  writeFileSync(join(directory, 'users.txt'), `"${user}" ""\n`, { mode: 0o644 });
  writeFileSync(
    config,
    [
      '[databases]',
      `${database} = host=${server.hostname} port=${server.port} dbname=${database} user=${user} password=${decodeURIComponent(server.password)}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      `unix_socket_dir = ${directory}`,
      'auth_type = trust',
      `auth_file = ${join(directory, 'users.txt')}`,
      `pool_mode = ${options.poolMode ?? 'transaction'}`,
      'default_pool_size = 4',
      ...(options.ignoreStartupParameters ? [`ignore_startup_parameters = ${options.ignoreStartupParameters}`] : []),
      `logfile = ${join(directory, 'pgbouncer.log')}`,
      '',
    ].join('\n'),
    { mode: 0o644 },
  );
  const { stop } = await launch(binary, config, port, directory);
  return { url: `postgresql://${encodeURIComponent(user)}@127.0.0.1:${port}/${database}`, stop };
}

export interface ProjectPgBouncer extends PgBouncer {
  port: number;
  /** The pooled role's URL with its password, through PgBouncer. */
  url: string;
  /** The console (`pgbouncer` database) as the stats user, for SHOW POOLS / SHOW STATS. */
  statsUrl: string;
  /** The rendered pgbouncer.ini, as PgBouncer read it. */
  ini: string;
  /** The rendered auth file. */
  userlist: string;
  /** PgBouncer's log so far. */
  log(): string;
  /**
   * A password rotation as the pod sees it: the auth file rewritten from `secrets` (the kubelet
   * refreshing the mounted Secret), then SIGHUP (what the readiness check sends on a change).
   */
  rotate(secrets: Readonly<Record<string, string>>): Promise<void>;
}

/**
 * PgBouncer with the project's rendered pgbouncer.ini and auth file in front of `server` (the
 * platform's roles with the passwords `secrets` gives: `app-password`, `pgbouncer-stats-password`).
 * Only what cannot be the same outside a container is mapped: the listen address and port, the
 * auth file's path and a log file; `options` passes the rest of the renderer's options (the
 * drill's pool sizes, the reset).
 */
export async function startProjectPgBouncer(
  server: { host: string; port: number },
  secrets: Readonly<Record<string, string>>,
  options: Partial<Pick<PgBouncerIniOptions, 'sizes' | 'resetAfterEveryTransaction' | 'replicas'>> & {
    /** Auth file lines added after the rendered ones (a misconfiguration a test wants to see refused). */
    extraUsers?: string;
  } = {},
): Promise<ProjectPgBouncer> {
  const binary = requirePgBouncer();
  const directory = mkdtempSync(join(tmpdir(), 'allixios-pgbouncer-'));
  chmodSync(directory, 0o777);
  const port = await freePort();
  const authFile = join(directory, 'userlist.txt');
  const logFile = join(directory, 'pgbouncer.log');
  const ini = renderPgBouncerIni({
    primaryHost: server.host,
    primaryPort: server.port,
    replicas: options.replicas ?? 1,
    tls: false,
    listenAddress: '127.0.0.1',
    listenPort: port,
    paths: { authFile },
    logFile,
    ...(options.sizes ? { sizes: options.sizes } : {}),
    ...(options.resetAfterEveryTransaction !== undefined ? { resetAfterEveryTransaction: options.resetAfterEveryTransaction } : {}),
  });
  const userlist = renderPgBouncerUserlist(secrets) + (options.extraUsers ?? '');
  const config = join(directory, 'pgbouncer.ini');
  writeFileSync(authFile, userlist, { mode: 0o644 });
  writeFileSync(config, ini, { mode: 0o644 });
  const { stop, signal } = await launch(binary, config, port, directory, () => readLog(logFile));
  const password = (key: string) => encodeURIComponent(secrets[key] ?? '');
  return {
    rotate: async (rotated) => {
      writeFileSync(authFile, renderPgBouncerUserlist(rotated), { mode: 0o644 });
      const reloads = (readLog(logFile).match(/RELOAD command issued|got SIGHUP/g) ?? []).length;
      signal('SIGHUP');
      const deadline = Date.now() + 5000;
      while ((readLog(logFile).match(/RELOAD command issued|got SIGHUP/g) ?? []).length === reloads) {
        if (Date.now() > deadline) throw new Error(`pgbouncer logged no reload within 5 s of SIGHUP:\n${readLog(logFile)}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    port,
    url: `postgresql://${POOLED_ROLE}:${password('app-password')}@127.0.0.1:${port}/allixios`,
    statsUrl: `postgresql://${STATS_USER}:${password('pgbouncer-stats-password')}@127.0.0.1:${port}/pgbouncer`,
    ini,
    userlist,
    log: () => readLog(logFile),
    stop,
  };
}

/** The uid and gid of the OS user postgres (PgBouncer refuses to run as root). */
function postgresUser(): { uid: number; gid: number } {
  const entry = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((line) => line.startsWith('postgres:'));
  if (!entry) throw new Error('there is no OS user postgres to run pgbouncer as (PgBouncer refuses root); installing the pgbouncer package creates it');
  const [, , uid, gid] = entry.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

function readLog(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** Runs PgBouncer (as postgres when root) until it listens on `port`; returns how to stop it and signal it. */
async function launch(
  binary: string,
  config: string,
  port: number,
  directory: string,
  log: () => string = () => '',
): Promise<{ stop: () => Promise<void>; signal: (signal: NodeJS.Signals) => void }> {
  // As root, PgBouncer itself runs as postgres (spawned with its uid, not through runuser, which
  // waits two seconds after passing a SIGTERM on), so that stopping it is stopping it.
  const child: ChildProcess = spawn(binary, [config], { stdio: 'ignore', ...(process.getuid?.() === 0 ? postgresUser() : {}) });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await Promise.race([
      waitForPort(port, 10_000),
      exited.then(() => {
        throw new Error(`pgbouncer exited before it listened on 127.0.0.1:${port}:\n${log()}`);
      }),
    ]);
  } catch (error) {
    child.kill('SIGTERM');
    rmSync(directory, { recursive: true, force: true });
    throw error;
  }
  return {
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      rmSync(directory, { recursive: true, force: true });
    },
    signal: (signal) => void child.kill(signal),
  };
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ host: '127.0.0.1', port }, () => (socket.end(), resolve(true)));
      socket.on('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`pgbouncer did not listen on 127.0.0.1:${port} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
