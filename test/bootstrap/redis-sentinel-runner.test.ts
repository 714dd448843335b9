/**
 * The bootstrap of Redis under Sentinel, on real processes (the drill's harness,
 * `bench/drills/redis-sentinel-cluster.ts`): a master, a replica and a Sentinel started by their
 * scripts from the rendered files, over TLS. Given `REDIS_SENTINELS` and `REDIS_MASTER_NAME`, the
 * bootstrap finds the master through Sentinel whatever host its URL names, takes its lease there,
 * and brings every member to the files: drift on the replica alone is planned and repaired on the
 * replica, where Redis would never replicate it (ACL and CONFIG are per server).
 */
import { spawnSync } from 'node:child_process';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep } from '../../bootstrap/adapters/backoff.ts';
import { mergeMembers } from '../../bootstrap/adapters/redis-members.ts';
import type { RedisObserved } from '../../bootstrap/adapters/redis-plan.ts';
import { runBootstrap } from '../../bootstrap/runner.ts';
import { connectionUrl } from '../../databases/connection.ts';
import { readEngineFile } from '../../databases/engine.ts';
import { redis, USERS_ACL_VARIABLE } from '../../databases/redis/index.ts';
import { MASTER_NAME } from '../../databases/redis/sentinel.ts';
import { renderSecretFile } from '../../databases/secret-files.ts';
import type { SentinelCluster } from '../../bench/drills/redis-sentinel-cluster.ts';
import { hasOpenssl } from '../support/certificates.ts';

const hasSentinel = spawnSync('redis-sentinel', ['--version']).status === 0 && spawnSync('redis-server', ['--version']).status === 0;
const skip = !hasSentinel
  ? 'needs redis-server and redis-sentinel (apt-get install -y redis-server redis-sentinel)'
  : !hasOpenssl
    ? 'needs openssl for the certificates'
    : undefined;

describe('what the plan sees of several members', () => {
  const user = (commands: string) => ({ enabled: true, password: 'set' as const, passwordHashes: ['a'], commands, keys: '', channels: '', selectors: [] });
  const master: RedisObserved = {
    self: 'allixios_admin',
    config: { 'maxmemory-policy': 'volatile-ttl', timeout: '0' },
    users: { allixios_admin: user('+@all'), allixios_app: user('+get') } as unknown as RedisObserved['users'],
    normalised: {},
  };

  const inSync = (...subjects: string[]) =>
    new Set(['ACL user allixios_admin', 'ACL user allixios_app', 'config maxmemory-policy', 'config timeout'].filter((subject) => !subjects.includes(subject)));

  it('is the master where every replica is in sync, however the replica spells the same rules', () => {
    const replica = structuredClone(master);
    (replica.users.allixios_app as unknown as { commands: string }).commands = '+get -@all';
    expect(mergeMembers(master, [{ observed: replica, inSync: inSync() }])).toEqual(master);
  });

  it("takes a replica's value, user or missing user wherever the replica's own plan finds it out of sync", () => {
    const replica = structuredClone(master);
    replica.config['maxmemory-policy'] = 'allkeys-lru';
    delete (replica.users as Record<string, unknown>).allixios_app;
    (replica.users as Record<string, unknown>).intruder = user('+@all');
    const merged = mergeMembers(master, [{ observed: replica, inSync: inSync('config maxmemory-policy', 'ACL user allixios_app') }]);
    expect(merged.config).toEqual({ 'maxmemory-policy': 'allkeys-lru', timeout: '0' });
    expect(Object.keys(merged.users).sort()).toEqual(['allixios_admin', 'intruder']);
  });
});

describe.skipIf(skip !== undefined)(`the bootstrap under Sentinel on real processes${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let cluster: SentinelCluster;
  const clients: Redis[] = [];

  const admin = (index: number) => {
    const client = cluster.client(cluster.members[index]!);
    clients.push(client);
    return client;
  };

  async function waitFor(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`not within 30 s: ${what}`);
      await sleep(100);
    }
  }

  beforeAll(async () => {
    const { SentinelCluster } = await import('../../bench/drills/redis-sentinel-cluster.ts');
    cluster = await SentinelCluster.create({ members: 2, sentinels: 1, environment: 'ephemeral', log: () => {} });
    for (const member of cluster.members) {
      cluster.startMember(member);
      await waitFor(`${member.name} ready`, () => cluster.probe(member, 'redis-member.sh', 'ready'));
    }
    cluster.startSentinel(cluster.sentinels[0]!);
    await waitFor('the Sentinel sees the replica', async () => (await cluster.sentinelView(cluster.sentinels[0]!))?.['num-slaves'] === '1');
    await Promise.all([admin(0).connect(), admin(1).connect()]);
  }, 60_000);

  afterAll(async () => {
    for (const client of clients) client.disconnect();
    await cluster?.stop();
  });

  const run = (mode: 'status' | 'apply') => {
    // The URL names the replica: the bootstrap must find the master through Sentinel all the same.
    const url = (user: 'allixios_admin' | 'allixios_app', secret: string) =>
      connectionUrl(user === 'allixios_admin' ? cluster.spec.adminConnection : cluster.spec.appConnection, cluster.passwords[secret]!, 'localhost', cluster.members[1]!.port, {
        caFile: cluster.caFile,
      });
    return runBootstrap({
      mode,
      only: ['redis'],
      env: {
        REDIS_URL: url('allixios_admin', 'admin-password'),
        REDIS_URL_APP: url('allixios_app', 'app-password'),
        [USERS_ACL_VARIABLE]: renderSecretFile(readEngineFile(redis, 'config/users.acl'), cluster.passwords),
        REDIS_SENTINELS: cluster.sentinels.map((sentinel) => sentinel.address).join(','),
        REDIS_MASTER_NAME: MASTER_NAME,
      },
      readyTimeoutMs: 10_000,
      lockTimeoutMs: 10_000,
    });
  };

  it('finds nothing to do on members started from the files', async () => {
    const report = await run('status');
    expect(report.ok, report.engines[0]?.error ?? JSON.stringify(report.engines[0]?.plan, null, 1)).toBe(true);
    expect(report.engines[0]!.plan!.changes).toEqual([]);
  });

  it('repairs drift on the replica alone, on the replica, with its lease on the master', async () => {
    // Given a user and a setting that exist on the replica only (Redis replicates neither)
    const replica = clients[1]!;
    await replica.call('ACL', 'SETUSER', 'intruder', 'on', '>intruder-password-1', '~*', '+@all');
    await replica.call('CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lru');
    // When the bootstrap runs
    const status = await run('status');
    expect(status.engines[0]!.plan!.changes.map((change) => change.subject).sort()).toEqual(['ACL user intruder', 'config maxmemory-policy']);
    const report = await run('apply');
    // Then it took its lease on the master the Sentinel names (on the replica its URL names, the
    // lease's SET would have been refused: READONLY), and repaired both on the replica
    expect(report.ok, report.engines[0]?.error).toBe(true);
    expect(report.engines[0]!.target).toBe(`the master ${MASTER_NAME} through Sentinel ${cluster.sentinels[0]!.address}`);
    expect(await replica.call('ACL', 'USERS')).not.toContain('intruder');
    expect(await replica.call('CONFIG', 'GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'volatile-ttl']);
    expect(await clients[0]!.call('CONFIG', 'GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'volatile-ttl']);
    // And a second run finds nothing to do
    const again = await run('status');
    expect(again.engines[0]!.plan!.changes).toEqual([]);
  });
});
