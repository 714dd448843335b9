/**
 * The runner against a real redis-server 7 started from the project's redis.conf and users.acl
 * (rendered with throwaway passwords). The conformance suite runs first; then what is Redis's
 * own: a fresh server is in sync, drift made at run time is reported and repaired, passwords,
 * the lease's renewals, and a server that answers late. Each test gets its own server.
 */
import { createConnection, createServer, type Server } from 'node:net';
import { Redis } from 'ioredis';
import { connectOnce } from '../support/redis.ts';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LOCK_KEY, RedisAdapter } from '../../bootstrap/adapters/redis-adapter.ts';
import { redisEngine } from '../../bootstrap/adapters/redis.ts';
import { readRedisDesired, REDIS } from '../../bootstrap/adapters/redis-files.ts';
import { freePort } from '../../bootstrap/embedded/postgresql.ts';
import { startEmbeddedRedis, type EmbeddedRedisServer } from '../../bootstrap/embedded/redis.ts';
import { reportText } from '../../bootstrap/format.ts';
import { runBootstrap, type BootstrapOptions } from '../../bootstrap/runner.ts';
import { redis } from '../../databases/redis/index.ts';
import { redisCompatibleHarness } from './conformance/harnesses.ts';
import { describeConformance } from './conformance/suite.ts';

describeConformance(redisCompatibleHarness({ ...REDIS, module: redis }));

let server: EmbeddedRedisServer;
const clients: Redis[] = [];

beforeEach(async () => {
  server = await startEmbeddedRedis();
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.quit().catch(() => client.disconnect())));
  await server?.stop();
});

function bootstrap(extra: Partial<BootstrapOptions> = {}) {
  return runBootstrap({
    mode: 'apply',
    env: { REDIS_URL: server.url('allixios_admin') },
    registry: [redisEngine],
    readyTimeoutMs: 5000,
    lockTimeoutMs: 10_000,
    lockLeaseMs: 3000,
    ...extra,
  });
}

/** A client that never retries, so a refused or closed connection shows as an error. */
function connect(url: string): Promise<Redis> {
  return connectOnce(url, clients);
}

const admin = () => connect(server.url('allixios_admin'));
const anonymousUrl = () => `redis://127.0.0.1:${server.port}/0`;

/** The drift of the issue: a config value, a widened user, a user nobody defined. */
async function introduceDrift(): Promise<void> {
  const client = await admin();
  await client.config('SET', 'maxmemory-policy', 'allkeys-lru');
  await client.call('ACL', 'SETUSER', 'allixios_app', '+flushall');
  await client.call('ACL', 'SETUSER', 'intruder', 'on', '>intruder-password', '+@all', '~*');
}

const EXPECTED_DRIFT = ['delete ACL user intruder', 'update ACL user allixios_app', 'update config maxmemory-policy'];

const changesOf = (report: Awaited<ReturnType<typeof runBootstrap>>) => report.engines[0]!.plan!.changes.map(({ action, subject }) => `${action} ${subject}`);
const changedOf = (report: Awaited<ReturnType<typeof runBootstrap>>) => report.engines[0]!.changed.map(({ change }) => `${change.action} ${change.subject}`);

describe('the bootstrap runner on Redis', () => {
  it('finds a server fresh from the project files in sync: status is ok and an apply changes nothing', async () => {
    // Given a server started from redis.conf and users.acl, when the status is asked
    const status = await bootstrap({ mode: 'status' });
    // Then nothing is to change, and the users and directives were compared
    expect(status.engines[0]!.error).toBeUndefined();
    expect(status.ok).toBe(true);
    expect(status.engines[0]!.plan!.changes).toEqual([]);
    expect(status.engines[0]!.plan!.inSync).toEqual(
      expect.arrayContaining(['ACL user default', 'ACL user allixios_app', 'ACL user allixios_monitor', 'config maxmemory-policy', 'config save']),
    );
    // And an apply changes nothing and leaves no lock behind
    const applied = await bootstrap();
    expect(applied.ok).toBe(true);
    expect(applied.engines[0]!.changed).toEqual([]);
    expect(await (await admin()).exists(LOCK_KEY)).toBe(0);
  });

  it('reports drift made at run time in --status and a dry run, and changes nothing', async () => {
    // Given drift made at run time
    await introduceDrift();

    // When the status and a dry run are asked
    const status = await bootstrap({ mode: 'status' });
    const dryRun = await bootstrap({ mode: 'dry-run' });

    // Then both list exactly the changes, and status is not ok
    expect(status.ok).toBe(false);
    expect(status.engines[0]!.error).toBeUndefined();
    expect(changesOf(status)).toEqual(EXPECTED_DRIFT);
    expect(dryRun.ok).toBe(true);
    expect(changesOf(dryRun)).toEqual(EXPECTED_DRIFT);
    expect(reportText(status).out).toContain('update   config maxmemory-policy: allkeys-lru on the server, volatile-ttl in config/redis.conf  (databases/redis/config/redis.conf)');
    // And no password hash is printed
    expect(reportText(status).out).not.toMatch(/[0-9a-f]{64}/);
    // And the server still has the drift
    const client = await admin();
    expect(await client.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'allkeys-lru']);
    expect(await client.call('ACL', 'USERS')).toContain('intruder');
    expect(await client.call('ACL', 'DRYRUN', 'allixios_app', 'FLUSHALL')).toBe('OK');
  });

  it('repairs the drift: allixios_app is refused FLUSHALL again, the intruder is gone, and a second apply changes nothing', async () => {
    // Given drift, and the intruder logged in
    await introduceDrift();
    const intruder = await connect(`redis://intruder:intruder-password@127.0.0.1:${server.port}/0`);
    expect(await intruder.set('other:x', '1')).toBe('OK');

    // When the bootstrap applies
    const report = await bootstrap();

    // Then it made exactly the changes
    expect(report.engines[0]!.error).toBeUndefined();
    expect(report.ok).toBe(true);
    expect(changedOf(report)).toEqual(EXPECTED_DRIFT);
    // And allixios_app, logging in with its password still, is refused FLUSHALL again
    const app = await connect(server.url('allixios_app'));
    await expect(app.flushall()).rejects.toThrow(/NOPERM/);
    expect(await app.set('session:x', '1', 'EX', 60)).toBe('OK');
    // And the intruder is gone, its open connection with it
    const client = await admin();
    expect(await client.call('ACL', 'USERS')).not.toContain('intruder');
    await expect(intruder.get('other:x')).rejects.toThrow(/Connection is closed/);
    await expect(connect(`redis://intruder:intruder-password@127.0.0.1:${server.port}/0`)).rejects.toThrow(/WRONGPASS/);
    expect(await client.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'volatile-ttl']);

    // And a second apply changes nothing
    const again = await bootstrap();
    expect(again.ok).toBe(true);
    expect(again.engines[0]!.changed).toEqual([]);
  });

  it('turns a default user that was turned on off again, and closes the connections it let in', async () => {
    // Given the default user turned on without a password, and a client that got in through it
    await (await admin()).call('ACL', 'SETUSER', 'default', 'on', 'nopass', '+@all', '~*');
    const anonymous = await connect(anonymousUrl());
    expect(await anonymous.set('anything', '1')).toBe('OK');

    // When the bootstrap applies
    const report = await bootstrap();

    // Then the default user is off again and the client is out: disconnected, not only refused
    expect(changedOf(report)).toEqual(['update ACL user default']);
    await expect(anonymous.get('anything')).rejects.toThrow(/Connection is closed/);
    expect(await (await admin()).client('LIST')).not.toMatch(/ user=default /);
    await expect(connect(anonymousUrl()).then((client) => client.get('anything'))).rejects.toThrow(/NOAUTH/);
  });

  it('without the rendered ACL file, refuses a user without its password but repairs everything else, and fails the run', async () => {
    // Given allixios_monitor without a password, a config drift and an intruder the bootstrap can repair
    const client = await admin();
    await client.call('ACL', 'SETUSER', 'allixios_monitor', 'resetpass');
    await client.config('SET', 'maxmemory-policy', 'allkeys-lru');
    await client.call('ACL', 'SETUSER', 'intruder', 'on', '>intruder-password', '+@all', '~*');

    // When the bootstrap applies, without REDIS_USERS_ACL
    const report = await bootstrap();

    // Then the repairs it can make are made (the security one included), the refusal is reported
    // with what to do, and the run fails
    expect(report.ok).toBe(false);
    expect(report.engines[0]!.error).toBe(
      'redis: repaired everything else, but not:\n  ACL user allixios_monitor has no password on the server, so nobody can log in as it; its password comes from provisioning (config/users.acl); redeploy the engine',
    );
    expect(changedOf(report)).toEqual(['delete ACL user intruder', 'update config maxmemory-policy']);
    expect(await client.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'volatile-ttl']);
    expect(await client.call('ACL', 'GETUSER', 'intruder')).toBeNull();
  });
});

describe('the bootstrap runner on Redis with the rendered ACL file: passwords', () => {
  const withAcl = (extra: Partial<BootstrapOptions> = {}) => bootstrap({ env: { REDIS_URL: server.url('allixios_admin'), REDIS_USERS_ACL: server.usersAcl }, ...extra });
  const loginFails = async (url: string) => {
    await expect(connect(url)).rejects.toThrow(/WRONGPASS|invalid username-password/);
  };
  const withPassword = (user: string, password: string) => `redis://${user}:${password}@127.0.0.1:${server.port}/0`;

  it('finds a fresh server in sync, passwords included', async () => {
    const report = await withAcl({ mode: 'status' });
    expect(report.ok).toBe(true);
    expect(report.engines[0]!.plan!.changes).toEqual([]);
  });

  it("puts back the file's password on a user whose live password differs", async () => {
    // Given allixios_app's password changed at run time
    await (await admin()).call('ACL', 'SETUSER', 'allixios_app', 'resetpass', '>changed-behind-our-back');
    // When status, then an apply, run
    const status = await withAcl({ mode: 'status' });
    const applied = await withAcl();
    // Then the difference is seen (counted, never shown), repaired, and only the stack's password logs in
    expect(status.ok).toBe(false);
    expect(status.engines[0]!.plan!.changes.map(({ subject, detail }) => `${subject}: ${detail}`)).toEqual([
      'ACL user allixios_app: passwords: 1 on the server that config/users.acl does not give, 1 of config/users.acl missing on the server',
    ]);
    expect(applied.ok).toBe(true);
    await connect(server.url('allixios_app'));
    await loginFails(withPassword('allixios_app', 'changed-behind-our-back'));
  });

  it('removes a second password added to a user (a backdoor) and ends the sessions opened with it', async () => {
    // Given a backdoor password on allixios_app, and a session opened with it
    await (await admin()).call('ACL', 'SETUSER', 'allixios_app', '>backdoor');
    const intruder = await connect(withPassword('allixios_app', 'backdoor'));
    // When the bootstrap applies
    const report = await withAcl();
    // Then the backdoor is gone, its session closed, the real password still works
    expect(report.ok).toBe(true);
    expect(changedOf(report)).toEqual(['update ACL user allixios_app']);
    await loginFails(withPassword('allixios_app', 'backdoor'));
    await expect(intruder.ping()).rejects.toThrow();
    await connect(server.url('allixios_app'));
  });

  it('repairs a user set to nopass and recreates a deleted one, in one run', async () => {
    const client = await admin();
    await client.call('ACL', 'SETUSER', 'allixios_app', 'nopass');
    await client.call('ACL', 'DELUSER', 'allixios_monitor');
    const report = await withAcl();
    expect(report.ok).toBe(true);
    expect(changedOf(report).sort()).toEqual(['create ACL user allixios_monitor', 'update ACL user allixios_app']);
    await loginFails(withPassword('allixios_app', 'anything'));
    expect(await (await connect(server.url('allixios_monitor'))).ping()).toBe('PONG');
    expect((await withAcl({ mode: 'status' })).ok).toBe(true);
  });
});

describe('the Redis lock', () => {
  it('renews its lease while it holds the lock and releases it when it closes', async () => {
    // Given an adapter holding the lock with a 600 ms lease
    const adapter = new RedisAdapter(server.url('allixios_admin'), { readyTimeoutMs: 5000, lockTimeoutMs: 5000, lockLeaseMs: 600 }, readRedisDesired());
    await adapter.connect();
    try {
      await adapter.lock();
      // When several lease periods pass
      await new Promise((resolve) => setTimeout(resolve, 2000));
      // Then the lease is still there, and another bootstrap gives up naming its holder
      const client = await admin();
      const holder = await client.get(LOCK_KEY);
      expect(holder).toMatch(/^.+\/\d+\/[0-9a-f-]{36}$/);
      // (Drift to repair: a run with nothing to do would not need the lock at all.)
      await client.config('SET', 'maxmemory-policy', 'allkeys-lru');
      const report = await bootstrap({ lockTimeoutMs: 300 });
      expect(report.engines[0]!.error).toBe(`redis: another bootstrap still holds the lock after 0.3 s (held by ${holder})`);
    } finally {
      await adapter.close();
    }
    // And once closed, the lock is released at once
    expect(await (await admin()).exists(LOCK_KEY)).toBe(0);
  });
});

/** A TCP proxy to the test server on `port`, standing for a server that starts listening late. */
function proxyTo(port: number, target: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const proxy = createServer((socket) => {
      const upstream = createConnection(target, '127.0.0.1');
      socket.pipe(upstream).pipe(socket);
      socket.on('error', () => upstream.destroy());
      upstream.on('error', () => socket.destroy());
    });
    proxy.on('error', reject);
    proxy.listen(port, '127.0.0.1', () => resolve(proxy));
  });
}

describe('Redis readiness', () => {
  it('waits for a server that starts answering within the ready timeout', async () => {
    // Given nothing listening yet on the port the URL names
    const port = await freePort();
    const url = server.url('allixios_admin').replace(`:${server.port}/`, `:${port}/`);
    let proxy: Server | undefined;
    const late = new Promise((resolve) => setTimeout(resolve, 800)).then(async () => (proxy = await proxyTo(port, server.port)));
    try {
      // When the bootstrap starts, and the server answers 0.8 s later
      const started = Date.now();
      const report = await bootstrap({ mode: 'status', env: { REDIS_URL: url }, readyTimeoutMs: 10_000 });
      // Then it waited and went on
      expect(report.engines[0]!.error).toBeUndefined();
      expect(report.ok).toBe(true);
      expect(Date.now() - started).toBeGreaterThanOrEqual(700);
    } finally {
      await late;
      await new Promise((resolve) => proxy?.close(resolve) ?? resolve(undefined));
    }
  });
});
