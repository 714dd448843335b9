/**
 * `npm run drill:redis-backup`: Redis's backup and restore on real processes. A redis-server
 * (Debian's, 7.0 here; the image runs 7.4) started with what the program renders for a stack (the
 * engine's arguments: redis.conf, maxmemory; the rendered users.acl), a dataset loaded as the
 * platform writes it (sessions, tokens, cache entries, rate-limit windows with TTLs; counters
 * without), and a writer that keeps writing throughout. Then:
 *
 * 1. snapshot: the backup job's own script (`config/redis-backup.sh`, as the CronJob runs it, as
 *    allixios_backup) takes `redis-cli --rdb` while the writes go on; the moment the server forked
 *    is read from its log, which splits the writes into those the snapshot must hold (executed
 *    before the fork), those it must not (sent after it), and the few in flight;
 * 2. restore: `restoreRedis` into a new data directory and a fresh redis-server;
 * 3. compare: every key of the dataset with its value and a TTL within what elapsed since it was
 *    written (or expired since, when its TTL ran out), every write before the fork there, every
 *    write after it missing, as it is between two snapshots.
 *
 * Writes a JSON report (bench/results/redis-backup-drill-<time>.json, or --out) and prints a
 * table. Exit 1 when a key of the snapshot is missing or wrong, a TTL is lost or off, a write after
 * the fork is there, or a bound is exceeded; the figures themselves are reported, not asserted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { sleep } from '../../bootstrap/adapters/backoff.ts';
import { freePort } from '../../bootstrap/embedded/postgresql.ts';
import { defineCommand } from '../../bootstrap/command-line.ts';
import { finishDrill, startDrill, stopOnExit, toolVersion } from './drill-run.ts';
import type { BackupSettings } from '../../databases/backup.ts';
import { engineSpec, readEngineFile } from '../../databases/engine.ts';
import { redis } from '../../databases/redis/index.ts';
import { restoreRedis, type RedisRestoreResult } from '../../databases/redis/restore.ts';
import { renderSecretFile } from '../../databases/secret-files.ts';

const command = defineCommand({
  name: 'drill:redis-backup',
  synopsis: ['npm run drill:redis-backup -- [options]'],
  summary:
    'Runs a redis-server with the rendered configuration of databases/redis, loads a dataset with and without TTLs, takes a snapshot with the backup job’s script (redis-cli --rdb as allixios_backup) while a client writes, restores it with restoreRedis into a fresh redis-server, and compares keys, values and TTLs.',
  options: {
    out: { type: 'string', value: '<file>', description: 'where to write the JSON report (default bench/results/redis-backup-drill-<time>.json)' },
    keys: { type: 'string', value: '<n>', description: 'keys in the dataset before the snapshot (default 100000)' },
    keep: { type: 'boolean', description: "keep the drill's directory (configuration, logs, the snapshot and the restored data) after the drill" },
  },
  notes: 'Needs the Debian package redis-server (7.0 or later: redis-server, redis-cli, redis-check-rdb).',
  exitCodes: {
    ok: 'every key of the snapshot restored with its value and TTL, every write after the snapshot missing as expected, within the bounds',
    failed: 'a key or a TTL of the snapshot is missing or wrong, a write after the snapshot is there, or a bound was exceeded',
  },
});
const { values } = command.parse();
const DATASET_KEYS = Number(values.keys ?? 100_000);
if (!Number.isInteger(DATASET_KEYS) || DATASET_KEYS < 100) command.fail(`--keys expects a whole number of at least 100, got ${JSON.stringify(values.keys)}`);

/** Generous bounds: beyond them the drill fails; within them the figures are only reported. */
const BOUNDS = { snapshotSeconds: 60, restoreSeconds: 60, ttlToleranceMilliseconds: 1500 };

const started = performance.now();
const run = startDrill(BOUNDS);
const { seconds, log, report, failures } = run;

/** The platform's keys (databases/redis/README.md, "Keys"): share of the dataset, TTL in seconds (none: no TTL), value size. */
const KINDS = [
  { prefix: 'session:', share: 0.5, ttl: 86_400, size: 300 },
  { prefix: 'auth:', share: 0.05, ttl: 3600, size: 120 },
  { prefix: 'cache:GET:', share: 0.3, ttl: 600, size: 600 },
  // Shorter than the drill may take: some expire between the snapshot and the check, as they would.
  { prefix: 'ratelimit:', share: 0.1, ttl: 12, size: 8 },
  { prefix: 'metrics:', share: 0.05, ttl: undefined, size: 16 },
] as const;

interface Written {
  key: string;
  value: string;
  ttl?: number;
  /** Wall-clock milliseconds: the write sent, its acknowledgement received. */
  sentAt: number;
  ackedAt: number;
}

/** A value of `size` characters that compresses as little as real tokens and JSON would (random, base64). */
const valueOf = (size: number) =>
  randomBytes(Math.ceil((size * 3) / 4))
    .toString('base64')
    .slice(0, size);

/** The writer: `session:drill:<n>` with a TTL and `metrics:drill:<n>` without, alternately, one at a time. */
class Writer {
  readonly writes: Written[] = [];
  readonly errors: string[] = [];
  private seq = 0;
  private stopped = false;
  private running?: Promise<void>;

  constructor(readonly client: Redis) {}

  start(): void {
    this.running = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      const seq = ++this.seq;
      const withTtl = seq % 2 === 1;
      const key = withTtl ? `session:drill:${seq}` : `metrics:drill:${seq}`;
      const value = `write-${seq}`;
      const sentAt = Date.now();
      try {
        if (withTtl) await this.client.set(key, value, 'EX', 3600);
        else await this.client.set(key, value);
        this.writes.push({ key, value, ...(withTtl ? { ttl: 3600 } : {}), sentAt, ackedAt: Date.now() });
      } catch (error) {
        this.errors.push((error as Error).message);
        await sleep(20);
      }
      await sleep(1);
    }
  }
}

function startServer(args: string[], logFile: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const fd = openSync(logFile, 'a');
    const child = spawn('redis-server', args, { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`redis-server exited (code ${code}):\n${tail(logFile)}`)));
    const wait = async () => {
      for (let i = 0; i < 200; i++) {
        if (readFileSync(logFile, 'utf8').includes('Ready to accept connections')) return resolve(child);
        await sleep(50);
      }
      reject(new Error(`redis-server was not ready within 10 s:\n${tail(logFile)}`));
    };
    void wait();
  });
}

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return `(no ${file})`;
  }
}

async function stopServer(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/** Runs the snapshot job's command as the CronJob would, its script and backup directory here. */
function runJob(script: string, env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', [script], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, output }));
  });
}

/** The server's log line of the fork for a SYNC (ms, wall clock): the snapshot's point in time lies between the two. */
function forkWindow(logFile: string, after: number): { from: number; to: number } | undefined {
  const stamp = (line: string) => {
    const match = /(\d{2}) (\w{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2})\.(\d{3})/.exec(line);
    return match ? Date.parse(`${match[2]} ${match[1]} ${match[3]} ${match[4]}:${match[5]}:${match[6]}.${match[7]}`) : NaN;
  };
  const lines = readFileSync(logFile, 'utf8').split('\n');
  const startLine = lines.find((line) => line.includes('Starting BGSAVE for SYNC') && stamp(line) >= after - 1000);
  const forkedLine = lines.find((line) => line.includes('Background RDB transfer started by pid') && stamp(line) >= after - 1000);
  if (!startLine || !forkedLine) return undefined;
  // The log's clock truncates to the millisecond.
  return { from: stamp(startLine), to: stamp(forkedLine) + 1 };
}

const directory = mkdtempSync(join(tmpdir(), 'allixios-redis-backup-drill-'));
let server: ChildProcess | undefined;
let writer: Writer | undefined;
let restored: RedisRestoreResult | undefined;
stopOnExit(
  run,
  async () => {
    await writer?.stop().catch(() => {});
    await restored?.server?.stop().catch(() => {});
    await stopServer(server);
  },
  () => {
    server?.kill('SIGKILL');
    try {
      if (restored?.server) process.kill(restored.server.pid, 'SIGKILL');
    } catch {
      // already stopped
    }
  },
);

const BACKUP: BackupSettings = {
  objectStore: {
    endpoint: 'https://s3.invalid',
    bucket: 'drill',
    prefix: 'drill',
    region: 'none',
    forcePathStyle: true,
    credentials: { kind: 'workloadIdentity', serviceAccountAnnotations: {} },
  },
  path: 'drill/redis',
  schedules: { snapshot: redis.backupSchedules!.snapshot! },
  retention: { count: 1, days: 1 },
};

try {
  // The engine as a dev stack renders it, with backups on.
  const environment = 'dev';
  const sizing = redis.sizing[environment];
  const spec = engineSpec(redis, {
    environment,
    version: redis.defaultVersion,
    replicas: 1,
    storage: sizing.storage,
    resources: sizing.resources,
    options: redis.optionsSchema.parse({}),
    tls: false,
    backup: BACKUP,
  });
  const job = spec.backup!.jobs[0]!;
  const passwords = Object.fromEntries(redis.secrets.map((secret) => [secret.key, randomBytes(18).toString('base64url')]));
  const aclFile = join(directory, 'users.acl');
  writeFileSync(aclFile, renderSecretFile(readEngineFile(redis, 'config/users.acl'), passwords, 'config/users.acl'), { mode: 0o600 });
  const port = await freePort();
  const [, , ...engineArgs] = spec.args!;
  const dataDirectory = join(directory, 'data');
  const args = [join(redis.directory, 'config/redis.conf'), ...engineArgs.map((arg, i) => (engineArgs[i - 1] === '--dir' ? dataDirectory : arg))];
  mkdirSync(dataDirectory);
  const serverLog = join(directory, 'redis.log');
  server = await startServer([...args, '--port', String(port), '--bind', '127.0.0.1', '--aclfile', aclFile], serverLog);
  report.versions = { redisServer: toolVersion(['redis-server', '--version']), redisCli: toolVersion(['redis-cli', '--version']) };
  report.settings = {
    environment,
    maxmemory: spec.args![spec.args!.indexOf('--maxmemory') + 1],
    datasetKeys: DATASET_KEYS,
    kinds: KINDS.map((kind) => ({ prefix: kind.prefix, keys: Math.round(DATASET_KEYS * kind.share), ttlSeconds: kind.ttl ?? null, valueBytes: kind.size })),
  };
  log(`redis-server on 127.0.0.1:${port} (${directory})`);

  const client = (user: 'allixios_app' | 'allixios_admin') =>
    new Redis({
      host: '127.0.0.1',
      port,
      username: user,
      password: passwords[user === 'allixios_app' ? 'app-password' : 'admin-password'],
      lazyConnect: true,
      enableReadyCheck: false,
      maxRetriesPerRequest: 1,
    });

  // The dataset, pipelined, as the platform's writes would leave it.
  const app = client('allixios_app');
  await app.connect();
  const dataset: Written[] = [];
  const loadStarted = performance.now();
  for (const kind of KINDS) {
    const count = Math.round(DATASET_KEYS * kind.share);
    for (let offset = 0; offset < count; offset += 1000) {
      const pipeline = app.pipeline();
      const batch: Array<Omit<Written, 'ackedAt'>> = [];
      const sentAt = Date.now();
      for (let i = offset; i < Math.min(count, offset + 1000); i++) {
        const key = `${kind.prefix}${i}`;
        const value = valueOf(kind.size);
        if (kind.ttl) pipeline.set(key, value, 'EX', kind.ttl);
        else pipeline.set(key, value);
        batch.push({ key, value, ...(kind.ttl ? { ttl: kind.ttl } : {}), sentAt });
      }
      await pipeline.exec();
      const ackedAt = Date.now();
      for (const entry of batch) dataset.push({ ...entry, ackedAt });
    }
  }
  const admin = client('allixios_admin');
  await admin.connect();
  const usedMemory = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1]);
  report.dataset = { keys: dataset.length, loadSeconds: seconds(performance.now() - loadStarted), usedMemoryBytes: usedMemory };
  log(`dataset: ${dataset.length} keys, ${(usedMemory / 2 ** 20).toFixed(1)} MiB in memory`);

  // The writer, through the snapshot and a moment after it.
  const writerClient = client('allixios_app');
  await writerClient.connect();
  const activeWriter = new Writer(writerClient);
  writer = activeWriter;
  activeWriter.start();
  await sleep(1000);

  // 1. The snapshot, by the job's script, as allixios_backup.
  const scriptPath = join(directory, 'redis-backup.sh');
  writeFileSync(scriptPath, job.configFiles![0]!.content);
  const backupDirectory = join(directory, 'backup');
  const literals = Object.fromEntries(Object.entries(job.env).flatMap(([name, value]) => (typeof value === 'string' ? [[name, value]] : [])));
  const snapshotStartedAt = Date.now();
  const snapshotStarted = performance.now();
  const result = await runJob(scriptPath, {
    ...literals,
    REDISCLI_AUTH: passwords['backup-password']!,
    REDIS_SENTINEL: '',
    REDIS_HOST: `127.0.0.1:${port}`,
    BACKUP_DIRECTORY: backupDirectory,
  });
  const snapshotSeconds = seconds(performance.now() - snapshotStarted);
  if (result.code !== 0) throw new Error(`the snapshot job failed (exit ${result.code}):\n${result.output}`);
  await sleep(1000);
  await activeWriter.stop();
  const snapshot = Object.fromEntries(
    readFileSync(join(backupDirectory, 'snapshot.txt'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
  const fork = forkWindow(serverLog, snapshotStartedAt);
  if (!fork) throw new Error(`the server's log has no "Starting BGSAVE for SYNC" / "Background RDB transfer started" lines after the snapshot began:\n${tail(serverLog)}`);
  const [, delay] = (await admin.config('GET', 'repl-diskless-sync-delay')) as [string, string];
  const snapshotFigures = {
    seconds: snapshotSeconds,
    forkAfterSeconds: seconds(fork.from - snapshotStartedAt),
    /** From the fork to the job's end: the transfer, redis-check-rdb and snapshot.txt. */
    afterForkSeconds: seconds(snapshotStartedAt + snapshotSeconds * 1000 - fork.to),
    replDisklessSyncDelaySeconds: Number(delay),
    rdbBytes: Number(snapshot.bytes),
    keys: Number(snapshot.keys),
    expires: Number(snapshot.expires),
    source: snapshot.source,
  };
  report.snapshot = snapshotFigures;
  if (snapshotSeconds > BOUNDS.snapshotSeconds) failures.push(`the snapshot took ${snapshotSeconds} s, over ${BOUNDS.snapshotSeconds} s`);
  log(`snapshot: ${snapshot.bytes} bytes, ${snapshot.keys} keys in ${snapshotSeconds} s (the server forked ${snapshotFigures.forkAfterSeconds} s after the job began)`);
  admin.disconnect();
  app.disconnect();
  writerClient.disconnect();

  // 2. The restore, into a new directory and a fresh server.
  const restoreStarted = performance.now();
  restored = await restoreRedis({ rdbFile: join(backupDirectory, 'dump.rdb'), dataDirectory: join(directory, 'restored'), execute: true, keepRunning: true, log });
  const restoreSeconds = seconds(performance.now() - restoreStarted);
  const figures = restored.figures!;
  report.restore = {
    seconds: restoreSeconds,
    phases: figures.seconds,
    keys: figures.restored.keys,
    keysWithTtl: figures.restored.keysWithTtl,
    expiredSinceSnapshot: figures.restored.expiredSinceSnapshot,
    byPrefix: figures.restored.byPrefix,
  };
  if (restoreSeconds > BOUNDS.restoreSeconds) failures.push(`the restore took ${restoreSeconds} s, over ${BOUNDS.restoreSeconds} s`);
  log(`restore: ${figures.restored.keys} keys in ${restoreSeconds} s (load ${figures.seconds.load} s, verification ${figures.seconds.verify} s, AOF ${figures.seconds.aof} s)`);

  // 3. Compare, key by key.
  const target = new Redis({
    host: '127.0.0.1',
    port: restored.server!.port,
    username: restored.server!.username,
    password: restored.server!.password,
    lazyConnect: true,
    enableReadyCheck: false,
  });
  await target.connect();
  const forkEnd = fork.to;
  const compare = {
    datasetPresent: 0,
    datasetExpiredSince: 0,
    datasetMissing: 0,
    valueMismatches: 0,
    ttlLost: 0,
    ttlOutOfRange: 0,
    ttlMaxDeviationMilliseconds: 0,
    writesBeforeSnapshot: 0,
    writesBeforeSnapshotMissing: 0,
    writesAfterSnapshot: 0,
    writesAfterSnapshotPresent: 0,
    writesInFlight: 0,
    writesInFlightPresent: 0,
  };
  const examples: string[] = [];
  const check = async (entries: Written[], expectation: (entry: Written) => 'present' | 'absent' | 'either') => {
    for (let offset = 0; offset < entries.length; offset += 1000) {
      const batch = entries.slice(offset, offset + 1000);
      const pipeline = target.pipeline();
      for (const entry of batch) pipeline.get(entry.key).pttl(entry.key);
      const replies = (await pipeline.exec()) ?? [];
      const now = Date.now();
      batch.forEach((entry, index) => {
        const value = replies[index * 2]?.[1] as string | null;
        const pttl = Number(replies[index * 2 + 1]?.[1]);
        const expected = expectation(entry);
        const expiredSince = entry.ttl !== undefined && entry.sentAt + entry.ttl * 1000 <= now + BOUNDS.ttlToleranceMilliseconds;
        if (value === null) {
          if (expected === 'present') {
            if (expiredSince) compare.datasetExpiredSince++;
            else {
              compare.datasetMissing++;
              if (entry.key.includes(':drill:')) compare.writesBeforeSnapshotMissing++;
              if (examples.length < 5) examples.push(`${entry.key} missing`);
            }
          }
          return;
        }
        if (expected === 'absent') {
          compare.writesAfterSnapshotPresent++;
          if (examples.length < 5) examples.push(`${entry.key}, written after the snapshot, is there`);
          return;
        }
        if (expected === 'either') compare.writesInFlightPresent++;
        if (!entry.key.includes(':drill:')) compare.datasetPresent++;
        if (value !== entry.value) {
          compare.valueMismatches++;
          if (examples.length < 5) examples.push(`${entry.key}: ${JSON.stringify(value.slice(0, 40))}, expected ${JSON.stringify(entry.value.slice(0, 40))}`);
        }
        if (entry.ttl === undefined) {
          if (pttl !== -1) compare.ttlOutOfRange++;
          return;
        }
        if (pttl < 0) {
          compare.ttlLost++;
          if (examples.length < 5) examples.push(`${entry.key} lost its TTL`);
          return;
        }
        // The expiry time the write set lies between sent + ttl and acked + ttl.
        const highest = entry.ackedAt + entry.ttl * 1000 - now;
        const lowest = entry.sentAt + entry.ttl * 1000 - now;
        const deviation = pttl > highest ? pttl - highest : pttl < lowest ? lowest - pttl : 0;
        compare.ttlMaxDeviationMilliseconds = Math.max(compare.ttlMaxDeviationMilliseconds, deviation);
        if (deviation > BOUNDS.ttlToleranceMilliseconds) {
          compare.ttlOutOfRange++;
          if (examples.length < 5) examples.push(`${entry.key}: TTL ${pttl} ms, expected ${lowest}..${highest} ms`);
        }
      });
    }
  };
  await check(dataset, () => 'present');
  const writes = activeWriter.writes;
  for (const write of writes) {
    if (write.ackedAt < fork.from) compare.writesBeforeSnapshot++;
    else if (write.sentAt > forkEnd) compare.writesAfterSnapshot++;
    else compare.writesInFlight++;
  }
  await check(writes, (write) => (write.ackedAt < fork.from ? 'present' : write.sentAt > forkEnd ? 'absent' : 'either'));
  target.disconnect();
  report.compare = { ...compare, writerErrors: activeWriter.errors.length, examples };
  log(
    `compare: ${compare.datasetPresent} of ${dataset.length} dataset keys with their values (${compare.datasetExpiredSince} expired since), ${compare.writesBeforeSnapshot} writes before the snapshot there but ${compare.writesBeforeSnapshotMissing}, ${compare.writesAfterSnapshot} after it missing as expected (${compare.writesAfterSnapshotPresent} there), ${compare.writesInFlight} in flight at the fork (${compare.writesInFlightPresent} there); TTLs off by at most ${compare.ttlMaxDeviationMilliseconds} ms`,
  );
  if (compare.datasetMissing) failures.push(`${compare.datasetMissing} keys of the snapshot missing after the restore (${examples.join('; ')})`);
  if (compare.valueMismatches) failures.push(`${compare.valueMismatches} keys restored with another value`);
  if (compare.ttlLost || compare.ttlOutOfRange) failures.push(`${compare.ttlLost} TTLs lost, ${compare.ttlOutOfRange} out of range`);
  if (compare.writesAfterSnapshotPresent) failures.push(`${compare.writesAfterSnapshotPresent} writes sent after the fork are in the snapshot`);
  if (compare.writesBeforeSnapshot === 0 || compare.writesAfterSnapshot === 0)
    failures.push('the writer wrote nothing before or nothing after the snapshot: nothing was proven about writes');
} catch (error) {
  failures.push((error as Error).message);
  log(String((error as Error).stack));
} finally {
  await writer?.stop().catch(() => {});
  await restored?.server?.stop().catch(() => {});
  await stopServer(server);
  if (!values.keep) rmSync(directory, { recursive: true, force: true });
  else log(`kept ${directory}`);
}

finishDrill(run, {
  name: 'redis-backup-drill',
  ...(values.out ? { out: values.out } : {}),
  startedAt: started,
  table: (figure) => [
    '| dataset keys | RDB bytes | snapshot s (fork after s) | restore s (load s) | keys restored | dataset keys expired by the check | writes before / after the snapshot (after, restored) | TTL max deviation ms | total s |',
    '|---|---|---|---|---|---|---|---|---|',
    `| ${figure('dataset', 'keys')} | ${figure('snapshot', 'rdbBytes')} | ${figure('snapshot', 'seconds')} (${figure('snapshot', 'forkAfterSeconds')}) | ${figure('restore', 'seconds')} (${String((report.restore as { phases?: { load?: number } } | undefined)?.phases?.load ?? '—')}) | ${figure('restore', 'keys')} | ${figure('compare', 'datasetExpiredSince')} | ${figure('compare', 'writesBeforeSnapshot')} / ${figure('compare', 'writesAfterSnapshot')} (${figure('compare', 'writesAfterSnapshotPresent')}) | ${figure('compare', 'ttlMaxDeviationMilliseconds')} | ${report.totalSeconds} |`,
  ],
  ok: 'drill:redis-backup: every key of the snapshot restored with its value and TTL; the writes after the snapshot missing, as between two snapshots',
});
