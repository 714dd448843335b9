/**
 * A throwaway redis-server (the Debian package on PATH) started the way the engine starts: the
 * engine's configuration (`config/redis.conf`), and an ACL file rendered from its template (`config/users.acl`)
 * with passwords generated for this server only (Redis's by default; any Redis-compatible
 * engine's folder works the same). Only what cannot be the same outside a container
 * is overridden: port, bind address, data directory and the ACL file's path. Used by
 * `npm run check` and the tests.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readEngineFile } from '../../databases/engine.ts';
import { renderSecretFile } from '../../databases/secret-files.ts';
import { REDIS, type RedisCompatible } from '../adapters/redis-files.ts';
import { displayRoot } from '../paths.ts';
import { MissingProgram } from './missing-program.ts';
import { freePort } from './postgresql.ts';

const STARTUP_TIMEOUT_MS = 15_000;

export interface EmbeddedRedisServer {
  /** `redis-server --version`'s version. */
  version: string;
  host: string;
  port: number;
  /** The generated password of each user users.acl gives one (`allixios_admin`, ...). */
  passwords: Readonly<Record<string, string>>;
  /** `redis://<user>:<password>@127.0.0.1:<port>/0`. */
  url(user: string): string;
  /** The rendered ACL file the server loaded (digests only), as the bootstrap gets it in REDIS_USERS_ACL. */
  usersAcl: string;
  /** Stops the server and removes its files. */
  stop(): Promise<void>;
}

/** redis-server must be installed; say so plainly when it is not. Returns its version. */
export function requireRedisServer(): string {
  const version = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (version.error) {
    throw new MissingProgram('redis-server', 'redis-server', `is not on PATH (${version.error.message})`);
  }
  return /v=(\S+)/.exec(version.stdout)?.[1] ?? 'unknown';
}

/** The secret each user's password comes from, read from the template's `{{ each-sha256 "<key>" "#" }}`. */
function userSecrets(template: string): Map<string, string> {
  const result = new Map<string, string>();
  for (const line of template.split(/\r?\n/)) {
    const match = /^user\s+(\S+)\s.*\{\{\s*(?:each-)?sha256\s+"([a-z0-9-]+)"/.exec(line.trim());
    if (match) result.set(match[1]!, match[2]!);
  }
  return result;
}

function waitUntilReady(child: ChildProcess, output: () => string): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`redis-server did not accept connections within ${STARTUP_TIMEOUT_MS / 1000} s:\n${output()}`));
    }, STARTUP_TIMEOUT_MS);
    const check = () => {
      if (output().includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', check);
    child.stderr?.on('data', check);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`redis-server could not be started: ${error.message}`));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited (code ${code}, signal ${signal}) before accepting connections:\n${output()}`));
    });
  });
}

/** What a test adds to the embedded server. */
export interface EmbeddedRedisOptions {
  /**
   * Arguments after the embedded ones (so they win): a test's TLS settings (`--port 0
   * --tls-port <port> ...`). With a TLS-only server, {@link EmbeddedRedisServer.url}'s plaintext
   * form does not connect: build the URL in its TLS form from {@link EmbeddedRedisServer.passwords}.
   */
  args?: string[];
  /** The port those arguments serve on (default: a free port the embedded server listens on). */
  port?: number;
}

/** Starts a fresh redis-server with `engine`'s files on a free port in a temporary directory. */
export async function startEmbeddedRedis(engine: RedisCompatible = REDIS, options: EmbeddedRedisOptions = {}): Promise<EmbeddedRedisServer> {
  const version = requireRedisServer();
  const { module } = engine;
  const template = readEngineFile(module, engine.files.acl);
  const secrets = Object.fromEntries(module.secrets.map((secret) => [secret.key, randomBytes(18).toString('base64url')]));
  const passwords: Record<string, string> = {};
  for (const [user, key] of userSecrets(template)) passwords[user] = secrets[key]!;

  const workDir = await mkdtemp(join(tmpdir(), 'allixios-redis-'));
  const dataDir = join(workDir, 'data');
  await mkdir(dataDir);
  const aclFile = join(workDir, 'users.acl');
  const usersAcl = renderSecretFile(template, secrets, join(module.directory, engine.files.acl).replace(`${displayRoot(module.directory)}/`, ''));
  await writeFile(aclFile, usersAcl, { mode: 0o600 });
  const port = options.port ?? (await freePort());

  let log = '';
  const child = spawn(
    'redis-server',
    [
      join(module.directory, engine.files.config),
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dataDir,
      '--aclfile',
      aclFile,
      '--daemonize',
      'no',
      ...(options.args ?? []),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout.on('data', (chunk: Buffer) => (log += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (log += chunk.toString()));
  // A test process that dies must not leave a server behind.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const stop = async () => {
    process.removeListener('exit', killOnExit);
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    await rm(workDir, { recursive: true, force: true });
  };
  try {
    await waitUntilReady(child, () => log);
  } catch (error) {
    await stop();
    throw error;
  }
  const url = (user: string) => {
    const password = passwords[user];
    if (password === undefined) throw new Error(`${module.name}: users.acl gives no password to ${user} (users with one: ${Object.keys(passwords).join(', ')})`);
    return `redis://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}/0`;
  };
  return { version, host: '127.0.0.1', port, passwords, url, usersAcl, stop };
}
