/**
 * Restoring Redis from an RDB snapshot of the backup job (backup.ts; databases/redis/README.md,
 * "Backups and restore"), as a library function the `npm run restore` command calls once it has
 * downloaded the snapshot: plan first (human-readable steps, returned), then, only when told,
 * execute them into a new, empty data directory and verify the result.
 *
 * The restore starts a fresh `redis-server` of its own on 127.0.0.1 with the program's
 * `config/redis.conf`, loads the snapshot there with AOF off (Redis 7 with `appendonly yes` and no
 * AOF yet starts empty and ignores dump.rdb), checks it against the figures `redis-check-rdb` read
 * from the file, then turns AOF on so the directory holds the data in the form a member running
 * the program's configuration loads (`appendonlydir` and `dump.rdb`). It logs in with a user of
 * its own (a restore-only ACL with a generated password): the stack's users are not in an RDB,
 * and a restore needs none of the stack's secrets.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, open, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import type { EngineRestore, RestorePlan, RestoreRequest } from '../backup.ts';
import { downloadObject, listUploads } from '../object-store.ts';
import { RDB_DIRECTORY } from './backup.ts';
import { redis } from './index.ts';

const run = promisify(execFile);

/** The key prefixes of the platform (databases/redis/README.md, "Keys"), counted one by one after a restore. */
export const KEY_PREFIXES = ['session:', 'auth:', 'cache:', 'ratelimit:', 'metrics:'] as const;

/** The oldest Redis that reads each RDB format version; older formats are read by every Redis the project runs. */
const RDB_FORMAT_MINIMUM_REDIS: Record<number, string> = { 10: '7.0.0', 11: '7.2.0', 12: '7.4.0' };

export interface RedisRestoreOptions {
  /** The snapshot on this machine: `dump.rdb` of `<path>/rdb/<backup id>/`, which the CLI downloads first. */
  rdbFile: string;
  /** The restored server's data directory: created if missing, refused unless empty. */
  dataDirectory: string;
  /** The redis-server to run (default: `redis-server` on PATH). It must read the snapshot's RDB format: the stack's Redis version or later. */
  redisServer?: string;
  /** redis-check-rdb (default: the one beside `redisServer`, else on PATH). */
  redisCheckRdb?: string;
  /** The port on 127.0.0.1 (default: a free one). */
  port?: number;
  /** Run the steps (default false: only the plan is returned). */
  execute?: boolean;
  /** Leave the restored server running, returned as `server` (default: stopped once verified; the directory stays). */
  keepRunning?: boolean;
  /** Progress lines while it executes (default: none). */
  log?: (line: string) => void;
}

/** What `redis-check-rdb` read from the snapshot. */
export interface RdbFigures {
  file: string;
  bytes: number;
  /** The RDB format version (the file's first bytes, `REDIS0012`). */
  formatVersion: number;
  /** The Redis that wrote it (the file's `redis-ver` field). */
  writtenBy?: string;
  keys: number;
  /** Keys with a TTL. */
  expires: number;
  /** Keys whose TTL had already run out when the file was checked. */
  alreadyExpired: number;
}

export interface RedisRestoreFigures {
  rdb: RdbFigures;
  restored: {
    dataDirectory: string;
    /** Keys in every database after the load (INFO keyspace). */
    keys: number;
    keysWithTtl: number;
    keysWithoutTtl: number;
    /** Keys with a TTL in the snapshot that expired before they were loaded. */
    expiredSinceSnapshot: number;
    /** Keys and keys with a TTL per prefix (`session:`, ..., `other`), database 0. */
    byPrefix: Record<string, { keys: number; withTtl: number }>;
    /** The shortest and longest remaining TTL, seconds, of the keys that have one. */
    ttlSeconds: { min: number; max: number } | null;
    /** The files the directory holds once AOF is on. */
    files: string[];
  };
  seconds: { check: number; load: number; verify: number; aof: number; total: number };
}

/** The restored server, when asked to keep it running. */
export interface RestoredRedis {
  host: '127.0.0.1';
  port: number;
  /** The restore-only user and its generated password (valid for this server only). */
  username: string;
  password: string;
  pid: number;
  /** SIGTERM, then waits for it to exit (it saves and fsyncs first). */
  stop(): Promise<void>;
}

export interface RedisRestoreResult {
  engine: 'redis';
  /** What the restore does (or did), step by step. */
  plan: string[];
  executed: boolean;
  figures?: RedisRestoreFigures;
  server?: RestoredRedis;
}

/** The restore's own user on the restored server. */
export const RESTORE_USER = 'allixios_restore';

interface ResolvedPlan {
  rdbFile: string;
  dataDirectory: string;
  redisServer: string;
  redisCheckRdb: string;
  serverVersion: string;
  formatVersion: number;
  port: number;
  configFile: string;
  steps: string[];
}

const errorOf = (message: string) => new Error(`redis restore: ${message}`);

/** A TCP port on 127.0.0.1 nothing listens on right now. */
async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port'))));
    });
  });
}

/** `7.0.15` from `redis-server --version`. */
async function redisServerVersion(binary: string): Promise<string> {
  let output: string;
  try {
    output = (await run(binary, ['--version'])).stdout;
  } catch (error) {
    throw errorOf(`cannot run ${binary} --version (${(error as Error).message.split('\n')[0]}): give the path of a redis-server of the stack's version or later (--redis-server)`);
  }
  const version = /\bv=(\d+\.\d+\.\d+)/.exec(output)?.[1];
  if (!version) throw errorOf(`${binary} --version printed no version (v=x.y.z): ${output.trim()}`);
  return version;
}

const versionParts = (version: string) => version.split('.').map(Number) as [number, number, number];
function atLeast(version: string, minimum: string): boolean {
  const [a, b] = [versionParts(version), versionParts(minimum)];
  for (let i = 0; i < 3; i++) if (a[i]! !== b[i]!) return a[i]! > b[i]!;
  return true;
}

/** The RDB format version of a file (`REDIS0012` -> 12); refuses a file that is not an RDB. */
export async function rdbFormatVersion(file: string): Promise<number> {
  const handle = await open(file, 'r');
  try {
    const header = Buffer.alloc(9);
    const { bytesRead } = await handle.read(header, 0, 9, 0);
    const text = header.subarray(0, bytesRead).toString('latin1');
    const match = /^REDIS(\d{4})$/.exec(text);
    if (!match) throw errorOf(`${file} is not an RDB snapshot: expected it to start with REDIS<4 digits>, found ${JSON.stringify(text)}`);
    return Number(match[1]);
  } finally {
    await handle.close();
  }
}

/** The plan: checks what can be checked without changing anything, and the steps in order. */
export async function planRedisRestore(options: RedisRestoreOptions): Promise<ResolvedPlan> {
  const rdbFile = resolve(options.rdbFile);
  const dataDirectory = resolve(options.dataDirectory);
  const info = await stat(rdbFile).catch(() => undefined);
  if (!info?.isFile()) throw errorOf(`the snapshot ${rdbFile} is not a file: download dump.rdb of the backup first (rclone copy <remote>:<path>/rdb/<backup id>/ <directory>)`);
  const formatVersion = await rdbFormatVersion(rdbFile);
  const redisServer = options.redisServer ?? 'redis-server';
  const serverVersion = await redisServerVersion(redisServer);
  const minimum = RDB_FORMAT_MINIMUM_REDIS[formatVersion];
  if (minimum === undefined && formatVersion > 12) throw errorOf(`${rdbFile} is RDB format ${formatVersion}, newer than this restore knows (12, Redis 7.4)`);
  if (minimum && !atLeast(serverVersion, minimum)) {
    throw errorOf(
      `${rdbFile} is RDB format ${formatVersion}, which Redis ${minimum} or later reads; ${redisServer} is ${serverVersion}: give a redis-server of the stack's version (--redis-server)`,
    );
  }
  const sibling = redisServer.includes('/') ? join(dirname(redisServer), 'redis-check-rdb') : undefined;
  const redisCheckRdb = options.redisCheckRdb ?? (sibling && existsSync(sibling) ? sibling : 'redis-check-rdb');
  if (existsSync(dataDirectory)) {
    const entries = await readdir(dataDirectory).catch((error: Error) => {
      throw errorOf(`cannot read the target directory ${dataDirectory}: ${error.message}`);
    });
    if (entries.length > 0) {
      const shown = entries.slice(0, 5).join(', ') + (entries.length > 5 ? `, … (${entries.length} entries)` : '');
      throw errorOf(`the target directory ${dataDirectory} is not empty (it holds ${shown}): a restore goes into a new, empty directory, never over data; choose another one`);
    }
  }
  const port = options.port ?? (await freePort());
  const configFile = join(redis.directory, 'config/redis.conf');
  const steps = [
    `check ${rdbFile} with ${redisCheckRdb}: its checksum, and how many keys and TTLs it holds (RDB format ${formatVersion}; ${redisServer} is Redis ${serverVersion})`,
    `create ${dataDirectory} (new and empty) and copy the snapshot into it as dump.rdb`,
    `start ${redisServer} with ${configFile} on 127.0.0.1:${port}, --dir ${dataDirectory}, AOF off to load dump.rdb, and a restore-only ACL (user ${RESTORE_USER}, a generated password, the default user off)`,
    `verify: the keys without a TTL are all there, the keys with one there or expired since the snapshot, TTLs still set (INFO keyspace against redis-check-rdb's figures; SCAN and PTTL per prefix ${KEY_PREFIXES.join(' ')})`,
    `turn AOF on (CONFIG SET appendonly yes) and wait for its rewrite: ${dataDirectory} then holds appendonlydir and dump.rdb, what a member running the program's redis.conf (appendonly yes) loads`,
    options.keepRunning
      ? `leave the server running on 127.0.0.1:${port} for the operator (stop() or SIGTERM saves and stops it)`
      : `stop the server (SIGTERM: it saves and fsyncs), leaving ${dataDirectory} to be copied into a member's volume`,
  ];
  return { rdbFile, dataDirectory, redisServer, redisCheckRdb, serverVersion, formatVersion, port, configFile, steps };
}

/** `redis-check-rdb <file>`: checksum and counts; refuses a damaged file with the tool's last lines. */
export async function checkRdb(redisCheckRdb: string, file: string): Promise<RdbFigures> {
  let output: string;
  try {
    const result = await run(redisCheckRdb, [file], { maxBuffer: 64 * 2 ** 20 });
    output = result.stdout + result.stderr;
  } catch (error) {
    const failed = error as Error & { stdout?: string; stderr?: string };
    const tail = `${failed.stdout ?? ''}${failed.stderr ?? ''}`.trim().split('\n').slice(-5).join('\n');
    throw errorOf(`${file} fails ${redisCheckRdb}: ${tail || failed.message}`);
  }
  const count = (label: string) => {
    const match = new RegExp(`^\\[info\\] (\\d+) ${label}$`, 'm').exec(output);
    if (!match) throw errorOf(`${redisCheckRdb} ${file} printed no "[info] <n> ${label}" line:\n${output.trim().split('\n').slice(-5).join('\n')}`);
    return Number(match[1]);
  };
  const writtenBy = /AUX FIELD redis-ver = '([^']*)'/.exec(output)?.[1];
  return {
    file,
    bytes: (await stat(file)).size,
    formatVersion: await rdbFormatVersion(file),
    ...(writtenBy ? { writtenBy } : {}),
    keys: count('keys read'),
    expires: count('expires'),
    alreadyExpired: count('already expired'),
  };
}

/** Starts redis-server; resolves once it accepts connections, with how long loading took. */
function startServer(binary: string, args: string[]): Promise<{ child: ChildProcess; output: () => string; loadSeconds: number }> {
  return new Promise((resolveStart, reject) => {
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) {
        child.stdout?.off('data', onData);
        child.stderr?.off('data', onData);
        // Keep draining, so a full pipe never stalls the server.
        child.stdout?.resume();
        child.stderr?.resume();
        const loaded = /DB loaded from disk: ([\d.]+) seconds/.exec(output);
        resolveStart({ child, output: () => output, loadSeconds: loaded ? Number(loaded[1]) : 0 });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('error', (error) => reject(errorOf(`cannot start ${binary}: ${error.message}`)));
    child.once('exit', (code, signal) =>
      reject(errorOf(`${binary} exited before it was ready (code ${code}, signal ${signal}):\n${output.trim().split('\n').slice(-10).join('\n')}`)),
    );
  });
}

async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolveExit) => child.once('exit', resolveExit));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  await exited;
  clearTimeout(timer);
}

/** INFO as fields. */
function infoFields(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .split('\r\n')
      .filter((line) => line.includes(':') && !line.startsWith('#'))
      .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1)]),
  );
}

/** Keys and keys with a TTL over every database (INFO keyspace: `db0:keys=3,expires=1,avg_ttl=0`). */
export function keyspaceTotals(info: string): { keys: number; expires: number } {
  let keys = 0;
  let expires = 0;
  for (const [name, value] of Object.entries(infoFields(info))) {
    if (!/^db\d+$/.test(name)) continue;
    keys += Number(/keys=(\d+)/.exec(value)?.[1] ?? 0);
    expires += Number(/expires=(\d+)/.exec(value)?.[1] ?? 0);
  }
  return { keys, expires };
}

function prefixOf(key: string): string {
  return KEY_PREFIXES.find((prefix) => key.startsWith(prefix)) ?? 'other';
}

/** Keys and TTLs per prefix of database 0, by SCAN and pipelined PTTL. */
async function keysByPrefix(
  client: Redis,
): Promise<{ byPrefix: RedisRestoreFigures['restored']['byPrefix']; ttlSeconds: { min: number; max: number } | null; withoutTtl: number }> {
  const byPrefix: RedisRestoreFigures['restored']['byPrefix'] = {};
  let min = Infinity;
  let max = -Infinity;
  let withoutTtl = 0;
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'COUNT', 1000);
    cursor = next;
    if (keys.length === 0) continue;
    const pipeline = client.pipeline();
    for (const key of keys) pipeline.pttl(key);
    const ttls = (await pipeline.exec()) ?? [];
    keys.forEach((key, index) => {
      const ttl = Number(ttls[index]?.[1]);
      // -2: gone since SCAN returned it (expired meanwhile).
      if (ttl === -2) return;
      const entry = (byPrefix[prefixOf(key)] ??= { keys: 0, withTtl: 0 });
      entry.keys++;
      if (ttl >= 0) {
        entry.withTtl++;
        min = Math.min(min, ttl / 1000);
        max = Math.max(max, ttl / 1000);
      } else withoutTtl++;
    });
  } while (cursor !== '0');
  return { byPrefix, ttlSeconds: Number.isFinite(min) ? { min: Math.round(min), max: Math.round(max) } : null, withoutTtl };
}

async function waitForAof(client: Redis, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const fields = infoFields(await client.info('persistence'));
    if (fields.aof_enabled === '1' && fields.aof_rewrite_in_progress === '0' && fields.aof_rewrite_scheduled === '0') {
      if (fields.aof_last_bgrewrite_status !== 'ok') throw errorOf(`the AOF rewrite failed (aof_last_bgrewrite_status ${fields.aof_last_bgrewrite_status})`);
      return;
    }
    if (Date.now() > deadline)
      throw errorOf(`AOF was not on within ${timeoutMs / 1000} s (aof_enabled ${fields.aof_enabled}, rewrite in progress ${fields.aof_rewrite_in_progress})`);
    await new Promise((resolveWait) => setTimeout(resolveWait, 100));
  }
}

/**
 * Plans a restore and, with `execute`, runs it: see the module's comment. Refuses before anything
 * is changed a target directory that is not empty, a file that is not an RDB, a redis-server too
 * old for the file's format. Throws after stopping the server when the verification fails.
 */
export async function restoreRedis(options: RedisRestoreOptions): Promise<RedisRestoreResult> {
  const plan = await planRedisRestore(options);
  if (!options.execute) return { engine: 'redis', plan: plan.steps, executed: false };
  const log = options.log ?? (() => {});
  const started = performance.now();
  const seconds = (from: number) => Math.round(performance.now() - from) / 1000;

  let phase = performance.now();
  const rdb = await checkRdb(plan.redisCheckRdb, plan.rdbFile);
  const check = seconds(phase);
  log(`${basename(plan.rdbFile)}: ${rdb.bytes} bytes, RDB format ${rdb.formatVersion}, ${rdb.keys} keys, ${rdb.expires} with a TTL (${rdb.alreadyExpired} expired already)`);

  await mkdir(plan.dataDirectory, { recursive: true, mode: 0o700 });
  if ((await readdir(plan.dataDirectory)).length > 0) throw errorOf(`the target directory ${plan.dataDirectory} is no longer empty; choose another one`);
  await copyFile(plan.rdbFile, join(plan.dataDirectory, 'dump.rdb'));
  const aclDirectory = await mkdtemp(join(tmpdir(), 'allixios-redis-restore-acl-'));
  const password = randomBytes(24).toString('base64url');
  const aclFile = join(aclDirectory, 'users.acl');
  await writeFile(
    aclFile,
    ['user default off resetpass resetkeys resetchannels -@all', `user ${RESTORE_USER} on #${createHash('sha256').update(password).digest('hex')} ~* &* +@all`, ''].join('\n'),
    { mode: 0o600 },
  );

  phase = performance.now();
  const args = [
    plan.configFile,
    '--port',
    String(plan.port),
    '--bind',
    '127.0.0.1',
    '--dir',
    plan.dataDirectory,
    '--dbfilename',
    'dump.rdb',
    '--appendonly',
    'no',
    '--aclfile',
    aclFile,
    '--daemonize',
    'no',
  ];
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  let client: Redis | undefined;
  let keep = false;
  try {
    server = await startServer(plan.redisServer, args);
    const load = seconds(phase);
    log(`loaded in ${load} s on 127.0.0.1:${plan.port}`);
    client = new Redis({ host: '127.0.0.1', port: plan.port, username: RESTORE_USER, password, lazyConnect: true, maxRetriesPerRequest: 1, enableReadyCheck: false });
    client.on('error', () => {});
    await client.connect();

    phase = performance.now();
    const totals = keyspaceTotals(await client.info('keyspace'));
    const scanned = await keysByPrefix(client);
    const verify = seconds(phase);
    const restored = {
      keys: totals.keys,
      keysWithTtl: totals.expires,
      keysWithoutTtl: totals.keys - totals.expires,
      expiredSinceSnapshot: rdb.keys - totals.keys,
    };
    // A key without a TTL never expires: every one of the snapshot's must be there, and no more.
    // A key with one may have expired since, never come back without it.
    const problems: string[] = [];
    if (restored.keysWithoutTtl !== rdb.keys - rdb.expires) {
      problems.push(`${restored.keysWithoutTtl} keys without a TTL after the load, ${rdb.keys - rdb.expires} in the snapshot`);
    }
    if (restored.keysWithTtl > rdb.expires) problems.push(`${restored.keysWithTtl} keys with a TTL after the load, more than the snapshot's ${rdb.expires}`);
    if (restored.keys > rdb.keys) problems.push(`${restored.keys} keys after the load, more than the snapshot's ${rdb.keys}`);
    log(`verified in ${verify} s: ${restored.keys} keys (${restored.keysWithTtl} with a TTL), ${restored.expiredSinceSnapshot} expired since the snapshot`);

    phase = performance.now();
    await client.config('SET', 'appendonly', 'yes');
    await waitForAof(client, 10 * 60_000);
    const aof = seconds(phase);
    const files = (await readdir(plan.dataDirectory)).sort();
    if (!files.includes('appendonlydir')) problems.push(`no appendonlydir in ${plan.dataDirectory} after AOF was turned on (found ${files.join(', ')})`);
    if (problems.length > 0) throw errorOf(`the restored server in ${plan.dataDirectory} does not match the snapshot ${plan.rdbFile}: ${problems.join('; ')}`);

    const figures: RedisRestoreFigures = {
      rdb,
      restored: { dataDirectory: plan.dataDirectory, ...restored, byPrefix: scanned.byPrefix, ttlSeconds: scanned.ttlSeconds, files },
      seconds: { check, load, verify, aof, total: seconds(started) },
    };
    if (!options.keepRunning) return { engine: 'redis', plan: plan.steps, executed: true, figures };
    keep = true;
    const child = server.child;
    return {
      engine: 'redis',
      plan: plan.steps,
      executed: true,
      figures,
      server: { host: '127.0.0.1', port: plan.port, username: RESTORE_USER, password, pid: child.pid!, stop: () => stopServer(child) },
    };
  } finally {
    client?.disconnect();
    if (server && !keep) await stopServer(server.child);
    await rm(aclDirectory, { recursive: true, force: true });
  }
}

/** The tools `npm run restore` runs for Redis (tests give stand-ins). */
export interface RedisRestoreTools {
  rclone?: string;
  redisServer?: string;
}

/**
 * Redis's restore as `npm run restore` calls it (databases/backup.ts, EngineRestore): a snapshot
 * from the stack's object store (`<path>/rdb/<id>/dump.rdb`, downloaded with rclone when the plan
 * is executed) or a local copy (an RDB file, or a directory holding `dump.rdb`), into a new, empty
 * data directory: {@link restoreRedis}.
 */
export function redisEngineRestore(tools: RedisRestoreTools = {}): EngineRestore {
  const who = 'redis restore';
  return {
    async plan(request: RestoreRequest): Promise<RestorePlan> {
      if (request.to) throw new Error(`${who}: --to: a Redis backup is an hourly snapshot, not a point in time; name a snapshot with --backup <id> (its UTC timestamp)`);
      if (request.replaceExisting) {
        throw new Error(
          `${who}: --replace-existing: a data directory is never written over; restore into a new one and point a member at it (databases/redis/README.md, "Backups and restore")`,
        );
      }
      const server = { ...(tools.redisServer ? { redisServer: tools.redisServer } : {}) };
      if (request.source !== undefined) {
        const rdbFile = (await stat(request.source)).isDirectory() ? join(request.source, 'dump.rdb') : request.source;
        const options: RedisRestoreOptions = { rdbFile, dataDirectory: request.target, ...server };
        const { plan } = await restoreRedis(options);
        return { steps: plan, execute: async (log) => figuresOf(await restoreRedis({ ...options, execute: true, log })) };
      }
      const settings = request.settings;
      if (!settings) throw new Error(`${who}: expected the stack (--stack) or a local copy of a snapshot (--from), got neither`);
      const rclone = tools.rclone ?? 'rclone';
      const id = request.backup ?? (await listUploads(who, settings.objectStore, settings.path, RDB_DIRECTORY, rclone)).at(-1);
      if (id === undefined) throw new Error(`${who}: no snapshot under s3://${settings.objectStore.bucket}/${settings.path}/${RDB_DIRECTORY}/: nothing to restore`);
      const key = `${settings.path}/${RDB_DIRECTORY}/${id}/dump.rdb`;
      return {
        steps: [
          `download s3://${settings.objectStore.bucket}/${key} with rclone (credentials from this machine's environment) into a new temporary directory`,
          `check it with redis-check-rdb, then load it into a fresh redis-server on a new, empty data directory ${request.target}, verify every key and TTL, and turn AOF on (restoreRedis)`,
        ],
        execute: async (log) => {
          const directory = await mkdtemp(join(tmpdir(), 'allixios-redis-restore-'));
          const rdbFile = join(directory, 'dump.rdb');
          log(`downloading s3://${settings.objectStore.bucket}/${key}`);
          await downloadObject(who, settings.objectStore, key, rdbFile, rclone);
          return figuresOf(await restoreRedis({ rdbFile, dataDirectory: request.target, ...server, execute: true, log }));
        },
      };
    },
  };
}

function figuresOf(result: RedisRestoreResult): Record<string, string | number> {
  const figures = result.figures!;
  return {
    dataDirectory: figures.restored.dataDirectory,
    keys: figures.restored.keys,
    keysWithTtl: figures.restored.keysWithTtl,
    rdbBytes: figures.rdb.bytes,
    rdbFormat: figures.rdb.formatVersion,
  };
}
