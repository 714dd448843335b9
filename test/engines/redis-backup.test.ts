/**
 * Redis's backup and restore on real processes (Debian's redis-server 7.0, redis-sentinel,
 * redis-cli, redis-check-rdb): the backup user's ACL as rendered, the snapshot job's script as
 * the job runs it (its environment from the description, only hosts, paths and the password put
 * in), and `restoreRedis` into a fresh server. Under writes and with figures:
 * `npm run drill:redis-backup`.
 *
 * Part one: a single server started from the program's redis.conf and rendered users.acl (the
 * Docker stack, where the job runs by hand without Sentinel). Part two: a member, a replica and a
 * Sentinel over TLS, started by their own scripts (`bench/drills/redis-sentinel-cluster.ts`), where
 * the job asks Sentinel for the replica.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep } from '../../bootstrap/adapters/backoff.ts';
import type { BackupJob, BackupSettings } from '../../databases/backup.ts';
import { CLIENT_CA_PATH } from '../../databases/connection.ts';
import { engineSpec, readEngineFile, type EngineSpec, type Environment } from '../../databases/engine.ts';
import { redis } from '../../databases/redis/index.ts';
import { redisBackup } from '../../databases/redis/backup.ts';
import { restoreRedis } from '../../databases/redis/restore.ts';
import { MASTER_NAME } from '../../databases/redis/sentinel.ts';
import { renderSecretFile } from '../../databases/secret-files.ts';
import type { SentinelCluster } from '../../bench/drills/redis-sentinel-cluster.ts';
import { hasOpenssl } from '../support/certificates.ts';
import { freePort } from '../support/engines.ts';
import { connectOnce } from '../support/redis.ts';

const PASSWORDS: Record<string, string> = Object.fromEntries(redis.secrets.map((secret) => [secret.key, `${secret.key}-test-0123456789`]));

const BACKUP: BackupSettings = {
  objectStore: {
    endpoint: 'https://s3.example.test',
    bucket: 'backups',
    prefix: 'dev',
    region: 'eu-west-1',
    forcePathStyle: true,
    credentials: { kind: 'secret', secretName: 'backups', accessKeyIdKey: 'id', secretAccessKeyKey: 'key' },
  },
  path: 'dev/redis',
  schedules: { snapshot: '15 * * * *' },
  retention: { count: 7, days: 14 },
};

function describeRedis(environment: Environment, tls: boolean, replicas?: number): EngineSpec {
  const sizing = redis.sizing[environment];
  return engineSpec(redis, {
    environment,
    version: redis.defaultVersion,
    replicas: replicas ?? sizing.replicas ?? 1,
    storage: sizing.storage,
    resources: sizing.resources,
    options: redis.optionsSchema.parse({}),
    tls,
    backup: BACKUP,
  });
}

const hasRedis = spawnSync('redis-server', ['--version']).status === 0 && spawnSync('redis-check-rdb', ['--version']).status !== null;
if (!hasRedis) {
  // CI installs it: a missing server must fail the run, never skip the backup's proof.
  throw new Error('redis-server is not on PATH: install redis-server (apt-get install -y redis-server); the Redis backup cannot be tested without it');
}

let workDir: string;
const clients: Redis[] = [];
const servers: ChildProcess[] = [];

function startRedis(args: string[]): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) {
        servers.push(child);
        resolve(child);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`redis-server exited (${code}):\n${output}`)));
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/** Runs the job's command as the CronJob would, with its script where it is mounted replaced by a copy here. */
async function runJob(job: BackupJob, env: Record<string, string>): Promise<{ code: number | null; stderr: string; directory: string }> {
  const script = job.configFiles![0]!;
  const scriptPath = join(workDir, `job-${Math.random().toString(36).slice(2)}.sh`);
  await writeFile(scriptPath, script.content);
  const directory = await mkdtemp(join(workDir, 'backup-'));
  const literals = Object.fromEntries(Object.entries(job.env).flatMap(([name, value]) => (typeof value === 'string' ? [[name, value]] : [])));
  const command = job.command.map((word) => (word === script.mountPath ? scriptPath : word));
  return new Promise((resolve, reject) => {
    const child = spawn(command[0]!, command.slice(1), {
      env: { PATH: process.env.PATH, ...literals, REDISCLI_AUTH: PASSWORDS['backup-password']!, BACKUP_DIRECTORY: directory, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stderr, directory }));
  });
}

function snapshotFields(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .trim()
      .split('\n')
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
}

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'allixios-redis-backup-'));
  await chmod(workDir, 0o755);
});

afterAll(async () => {
  for (const client of clients) client.disconnect();
  await Promise.all(servers.map(stop));
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

describe('a single server (Docker: the job by hand, no Sentinel)', () => {
  const spec = describeRedis('dev', false);
  const job = spec.backup!.jobs[0]!;
  let port: number;
  let aclFile: string;

  const connectAs = (username: string, secret: string) => connectOnce({ host: '127.0.0.1', port, username, password: PASSWORDS[secret] }, clients);

  beforeAll(async () => {
    const dataDir = join(workDir, 'data');
    await mkdir(dataDir);
    aclFile = join(workDir, 'users.acl');
    await writeFile(aclFile, renderSecretFile(readEngineFile(redis, 'config/users.acl'), PASSWORDS, 'config/users.acl'), { mode: 0o600 });
    port = await freePort();
    await startRedis([join(redis.directory, 'config/redis.conf'), '--dir', dataDir, '--port', String(port), '--bind', '127.0.0.1', '--aclfile', aclFile]);
    // Keys as the platform writes them: with TTLs, and one without.
    const app = await connectAs('allixios_app', 'app-password');
    for (let i = 0; i < 50; i++) await app.set(`session:${i}`, `user-${i}`, 'EX', 3600);
    for (let i = 0; i < 20; i++) await app.set(`cache:GET:${i}`, `response-${i}`, 'EX', 600);
    await app.set('metrics:requests:total', '1234');
  }, 30_000);

  it('gives allixios_backup REPLCONF and SYNC, which redis-cli --rdb needs, and nothing else', async () => {
    const admin = await connectAs('allixios_admin', 'admin-password');
    for (const command of [['REPLCONF', 'rdb-only', '1'], ['SYNC']]) {
      expect(await admin.call('ACL', 'DRYRUN', 'allixios_backup', ...command), command.join(' ')).toBe('OK');
    }
    const backup = await connectAs('allixios_backup', 'backup-password');
    for (const command of [
      ['GET', 'session:1'],
      ['SET', 'session:1', 'x'],
      ['DUMP', 'session:1'],
      ['SCAN', '0'],
      ['KEYS', '*'],
      ['DBSIZE'],
      ['CONFIG', 'GET', 'dir'],
      ['CONFIG', 'SET', 'dir', '/tmp'],
      ['INFO'],
      ['PING'],
      ['MONITOR'],
      ['PSYNC', '?', '-1'],
      ['REPLICAOF', 'NO', 'ONE'],
      ['FLUSHALL'],
      ['ACL', 'LIST'],
      ['CLIENT', 'LIST'],
      ['SUBSCRIBE', 'events:article-published'],
      ['PUBLISH', 'events:article-published', 'x'],
      ['BGSAVE'],
      ['SHUTDOWN', 'NOSAVE'],
    ]) {
      await expect(backup.call(command[0]!, ...command.slice(1)), command.join(' ')).rejects.toThrow(/NOPERM/);
    }
  });

  it('the job writes a dump.rdb that redis-check-rdb accepts and a snapshot.txt with its figures, from the engine’s address', async () => {
    const result = await runJob(job, { REDIS_SENTINEL: '', REDIS_HOST: `127.0.0.1:${port}` });
    expect(result.code, result.stderr).toBe(0);
    expect((await readdir(result.directory)).sort()).toEqual(['dump.rdb', 'snapshot.txt']);
    const fields = snapshotFields(await readFile(join(result.directory, 'snapshot.txt'), 'utf8'));
    expect(fields).toMatchObject({ source: `127.0.0.1:${port}`, role: 'unknown', keys: '71', expires: '70', already_expired: '0', redis_version: expect.stringMatching(/^7\./) });
    expect(Number(fields.bytes)).toBeGreaterThan(0);
    expect(result.stderr).toContain(`snapshot of 127.0.0.1:${port}, the engine's address`);
    // Nothing of the password in what it printed.
    expect(result.stderr).not.toContain(PASSWORDS['backup-password']);
  });

  it('falls back to the engine’s address when no Sentinel answers', async () => {
    const nobody = await freePort();
    const result = await runJob(job, { REDIS_SENTINEL: `127.0.0.1:${nobody}`, REDIS_HOST: `127.0.0.1:${port}` });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain(`Sentinel 127.0.0.1:${nobody} did not answer`);
    expect(result.stderr).toContain('(no answer from Sentinel)');
  });

  it('fails with a wrong password and leaves no snapshot to upload', async () => {
    const result = await runJob(job, { REDIS_SENTINEL: '', REDIS_HOST: `127.0.0.1:${port}`, REDISCLI_AUTH: 'not-the-password' });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/WRONGPASS|AUTH failed/);
    expect(existsSync(join(result.directory, 'dump.rdb'))).toBe(false);
  });

  it('fails without REDISCLI_AUTH rather than trying another login', async () => {
    const script = join(workDir, 'bare.sh');
    await writeFile(script, job.configFiles![0]!.content);
    const run = spawnSync('sh', [script], { env: { PATH: process.env.PATH, REDIS_HOST: `127.0.0.1:${port}`, BACKUP_DIRECTORY: join(workDir, 'bare') }, encoding: 'utf8' });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain("REDISCLI_AUTH (allixios_backup's password) is not set");
  });

  describe('restoreRedis', () => {
    let snapshot: string;

    beforeAll(async () => {
      const result = await runJob(job, { REDIS_SENTINEL: '', REDIS_HOST: `127.0.0.1:${port}` });
      if (result.code !== 0) throw new Error(result.stderr);
      snapshot = join(result.directory, 'dump.rdb');
    }, 30_000);

    it('plans without touching anything: the steps name the snapshot, the directory and the server', async () => {
      const target = join(workDir, 'restore-planned');
      const result = await restoreRedis({ rdbFile: snapshot, dataDirectory: target });
      expect(result.executed).toBe(false);
      expect(result.figures).toBeUndefined();
      expect(result.plan).toHaveLength(6);
      expect(result.plan[0]).toContain(snapshot);
      expect(result.plan[1]).toContain(`create ${target}`);
      expect(result.plan[2]).toMatch(/^start redis-server with .*config\/redis\.conf on 127\.0\.0\.1:\d+/);
      expect(existsSync(target)).toBe(false);
    });

    it('refuses a target directory that is not empty, naming it and what it holds', async () => {
      const target = join(workDir, 'restore-busy');
      await mkdir(target);
      await writeFile(join(target, 'appendonly.aof'), 'live data');
      await expect(restoreRedis({ rdbFile: snapshot, dataDirectory: target, execute: true })).rejects.toThrow(
        `redis restore: the target directory ${target} is not empty (it holds appendonly.aof): a restore goes into a new, empty directory, never over data; choose another one`,
      );
      expect(await readFile(join(target, 'appendonly.aof'), 'utf8')).toBe('live data');
    });

    it('refuses a file that is not an RDB, and a redis-server too old for the snapshot’s format', async () => {
      const notRdb = join(workDir, 'not.rdb');
      await writeFile(notRdb, 'hello');
      await expect(restoreRedis({ rdbFile: notRdb, dataDirectory: join(workDir, 'restore-x') })).rejects.toThrow(
        `redis restore: ${notRdb} is not an RDB snapshot: expected it to start with REDIS<4 digits>, found "hello"`,
      );
      // An RDB of Redis 7.4 (format 12) for Debian's 7.0.
      const newer = join(workDir, 'newer.rdb');
      await writeFile(newer, Buffer.concat([Buffer.from('REDIS0012'), (await readFile(snapshot)).subarray(9)]));
      await expect(restoreRedis({ rdbFile: newer, dataDirectory: join(workDir, 'restore-y') })).rejects.toThrow(
        /^redis restore: .*newer\.rdb is RDB format 12, which Redis 7\.4\.0 or later reads; redis-server is 7\.0\.\d+: give a redis-server of the stack's version \(--redis-server\)$/,
      );
      await expect(restoreRedis({ rdbFile: snapshot, dataDirectory: join(workDir, 'restore-z'), redisServer: join(workDir, 'no-such-redis-server') })).rejects.toThrow(
        /^redis restore: cannot run .*no-such-redis-server --version/,
      );
    });

    it('restores into a new directory, verifies keys and TTLs against the snapshot, and leaves what a member with the program’s config loads', async () => {
      const target = join(workDir, 'restored');
      const result = await restoreRedis({ rdbFile: snapshot, dataDirectory: target, execute: true });
      expect(result.executed).toBe(true);
      const figures = result.figures!;
      expect(figures.rdb).toMatchObject({ keys: 71, expires: 70, alreadyExpired: 0 });
      expect(figures.restored).toMatchObject({ keys: 71, keysWithTtl: 70, keysWithoutTtl: 1, expiredSinceSnapshot: 0 });
      expect(figures.restored.byPrefix).toEqual({ 'session:': { keys: 50, withTtl: 50 }, 'cache:': { keys: 20, withTtl: 20 }, 'metrics:': { keys: 1, withTtl: 0 } });
      expect(figures.restored.ttlSeconds!.max).toBeLessThanOrEqual(3600);
      expect(figures.restored.ttlSeconds!.min).toBeGreaterThan(500);
      expect(figures.restored.files).toEqual(['appendonlydir', 'dump.rdb']);
      expect(result.server).toBeUndefined();

      // The directory as a member would start with it: the program's redis.conf, AOF on.
      const memberPort = await freePort();
      const member = await startRedis([join(redis.directory, 'config/redis.conf'), '--dir', target, '--port', String(memberPort), '--bind', '127.0.0.1', '--aclfile', aclFile]);
      const app = await connectOnce({ host: '127.0.0.1', port: memberPort, username: 'allixios_app', password: PASSWORDS['app-password'] }, clients);
      expect(await app.get('session:7')).toBe('user-7');
      expect(await app.ttl('session:7')).toBeGreaterThan(3000);
      expect(await app.ttl('metrics:requests:total')).toBe(-1);
      expect(await app.exists(...Array.from({ length: 50 }, (_, i) => `session:${i}`))).toBe(50);
      await stop(member);
    }, 60_000);

    it('keeps the restored server running when asked, reachable by its restore-only user until stopped', async () => {
      const result = await restoreRedis({ rdbFile: snapshot, dataDirectory: join(workDir, 'restored-running'), execute: true, keepRunning: true });
      const server = result.server!;
      try {
        const client = await connectOnce({ host: server.host, port: server.port, username: server.username, password: server.password }, clients);
        expect(await client.dbsize()).toBe(71);
        // The stack's users are not there: the restore needs none of their secrets.
        await expect(connectOnce({ host: server.host, port: server.port, username: 'allixios_app', password: PASSWORDS['app-password'] }, clients)).rejects.toThrow(/WRONGPASS/);
      } finally {
        await server.stop();
      }
    }, 60_000);
  });
});

const hasSentinel = spawnSync('redis-sentinel', ['--version']).status === 0;
const skipSentinel = !hasSentinel ? 'needs redis-sentinel (apt-get install -y redis-sentinel)' : !hasOpenssl ? 'needs openssl for the certificates' : undefined;

describe.skipIf(skipSentinel !== undefined)(`under Sentinel, over TLS (Kubernetes)${skipSentinel ? ` (skipped: ${skipSentinel})` : ''}`, () => {
  let cluster: SentinelCluster;
  let job: BackupJob;

  async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
      await sleep(200);
    }
  }

  /** The job's environment on this machine: the Sentinel and the engine by their loopback ports, the CA where the test made it. */
  const environment = () => ({
    REDIS_SENTINEL: cluster.sentinels[0]!.address,
    REDIS_HOST: cluster.members[0]!.address,
    REDIS_CLI_TLS: String(job.env.REDIS_CLI_TLS).replace(CLIENT_CA_PATH, cluster.caFile),
  });

  const replicasSeen = async () => {
    const reply = await cluster.ask(cluster.sentinels[0]!, 'SENTINEL', 'REPLICAS', MASTER_NAME);
    return Array.isArray(reply) ? (reply as string[][]).map((fields) => Object.fromEntries(fields.flatMap((value, i) => (i % 2 === 0 ? [[value, fields[i + 1]]] : [])))) : [];
  };

  beforeAll(async () => {
    const { SentinelCluster } = await import('../../bench/drills/redis-sentinel-cluster.ts');
    cluster = await SentinelCluster.create({ members: 2, sentinels: 1, environment: 'ephemeral', log: () => {} });
    job = redisBackup(redis, { backup: BACKUP, tls: true, memoryLimit: '128Mi' }).jobs[0]!;
    // The harness renders every secret of the engine; the job uses its backup password.
    PASSWORDS['backup-password'] = cluster.passwords['backup-password']!;
    for (const member of cluster.members) {
      cluster.startMember(member);
      await waitFor(`${member.name} is ready`, () => cluster.probe(member, 'redis-member.sh', 'ready'));
    }
    cluster.startSentinel(cluster.sentinels[0]!);
    await waitFor('Sentinel sees the replica in sync', async () => (await replicasSeen()).some((replica) => replica['master-link-status'] === 'ok'));
    const app = cluster.client(cluster.members[0]!, 'allixios_app');
    await app.connect();
    for (let i = 0; i < 30; i++) await app.set(`session:${i}`, `user-${i}`, 'EX', 3600);
    app.disconnect();
    await waitFor('the replica has the writes', async () => {
      const info = await cluster.replication(cluster.members[1]!);
      const master = await cluster.replication(cluster.members[0]!);
      return info?.slave_repl_offset === master?.master_repl_offset;
    });
  }, 90_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  it('lets the backup user ask Sentinel where the replicas and the master are, and nothing else', async () => {
    const ask = async (...command: string[]) => {
      const client = new Redis({
        host: 'localhost',
        port: cluster.sentinels[0]!.port,
        username: 'allixios_backup',
        password: cluster.passwords['backup-password'],
        tls: { ca: await readFile(cluster.caFile) },
        lazyConnect: true,
        enableReadyCheck: false,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      client.on('error', () => {});
      clients.push(client);
      try {
        await client.connect();
        return await client.call(command[0]!, ...command.slice(1));
      } catch (error) {
        return (error as Error).message.split(' ')[0];
      }
    };
    expect(await ask('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', MASTER_NAME)).toEqual(['localhost', String(cluster.members[0]!.port)]);
    expect(Array.isArray(await ask('SENTINEL', 'REPLICAS', MASTER_NAME))).toBe(true);
    for (const command of [
      ['SENTINEL', 'FAILOVER', MASTER_NAME],
      ['SENTINEL', 'SET', MASTER_NAME, 'down-after-milliseconds', '1'],
      ['SENTINEL', 'MASTERS'],
      ['SENTINEL', 'SENTINELS', MASTER_NAME],
      ['PING'],
      ['SUBSCRIBE', '+switch-master'],
    ]) {
      expect(await ask(...command), command.join(' ')).toBe('NOPERM');
    }
  });

  it('snapshots the replica in sync that Sentinel names, over TLS, with the master’s writes', async () => {
    const replica = cluster.members[1]!;
    const result = await runJob(job, environment());
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain(`snapshot of ${replica.address}, a replica in sync (Sentinel ${cluster.sentinels[0]!.address})`);
    const fields = snapshotFields(await readFile(join(result.directory, 'snapshot.txt'), 'utf8'));
    expect(fields).toMatchObject({ source: replica.address, role: 'replica', keys: '30', expires: '30' });
  });

  it('snapshots the master when no replica is in sync', async () => {
    cluster.kill(cluster.members[1]!);
    await waitFor('Sentinel sees the replica gone', async () => (await replicasSeen()).every((replica) => replica.flags !== 'slave' || replica['master-link-status'] !== 'ok'));
    const result = await runJob(job, environment());
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain(`snapshot of ${cluster.members[0]!.address}, the master: Sentinel knows no replica in sync`);
    expect(snapshotFields(await readFile(join(result.directory, 'snapshot.txt'), 'utf8'))).toMatchObject({ role: 'master', keys: '30' });
  }, 30_000);

  it('stops when Sentinel refuses the backup user, instead of looking elsewhere', async () => {
    const result = await runJob(job, { ...environment(), REDISCLI_AUTH: 'not-the-password' });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/Sentinel .* refused sentinel replicas allixios: .*WRONGPASS/);
    expect(existsSync(join(result.directory, 'dump.rdb'))).toBe(false);
  });
});
