/**
 * A real PgBouncer (Debian's `pgbouncer`, installed by .ci/run) in front of a test server, for the
 * tests of what the bootstrap does behind a connection pooler. It runs as the OS user postgres
 * (PgBouncer refuses root), in a folder of its own, on a free port; clients are trusted, and
 * PgBouncer logs in to the server with the role's password.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../bootstrap/embedded/postgresql.ts';

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
  const asRoot = process.getuid?.() === 0;
  const child: ChildProcess = asRoot ? spawn('runuser', ['-u', 'postgres', '--', binary, config], { stdio: 'ignore' }) : spawn(binary, [config], { stdio: 'ignore' });
  await waitForPort(port, 10_000);
  return {
    url: `postgresql://${encodeURIComponent(user)}@127.0.0.1:${port}/${database}`,
    stop: async () => {
      // runuser passes SIGTERM on to PgBouncer, which exits at once.
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await exited;
      rmSync(directory, { recursive: true, force: true });
    },
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
