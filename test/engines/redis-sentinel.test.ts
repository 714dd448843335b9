/**
 * Redis under Sentinel on real processes, as an ephemeral stack renders it over TLS: one member and
 * one Sentinel (quorum 1), each started by its own script (`config/redis-member.sh`,
 * `config/sentinel.sh`) with the rendered configuration, ACL and secret files
 * (`bench/drills/redis-sentinel-cluster.ts`, the drill's harness). It checks what the render
 * promises and mocks cannot: Sentinel serves TLS only, its ACL lets a client ask where the master
 * is and nothing more, the Redis-side users of replication and Sentinel reach no key, the probes
 * pass, and a restarted Sentinel keeps what it learned. The failover itself, on three members and
 * three Sentinels: `npm run drill:redis-sentinel`.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep } from '../../bootstrap/adapters/backoff.ts';
import { sentinelClientOptions } from '../../bootstrap/adapters/redis-sentinel.ts';
import { connectionUrl } from '../../databases/connection.ts';
import { TLS_FILES } from '../../databases/engine.ts';
import { MASTER_NAME } from '../../databases/redis/sentinel.ts';
import { hasOpenssl } from '../support/certificates.ts';
import { connectOnce } from '../support/redis.ts';
import type { SentinelCluster } from '../../bench/drills/redis-sentinel-cluster.ts';

const hasSentinel = spawnSync('redis-sentinel', ['--version']).status === 0 && spawnSync('redis-server', ['--version']).status === 0;
const skip = !hasSentinel
  ? 'needs redis-server and redis-sentinel (apt-get install -y redis-server redis-sentinel)'
  : !hasOpenssl
    ? 'needs openssl for the certificates'
    : undefined;

let cluster: SentinelCluster;
const clients: Redis[] = [];

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}\n${cluster.tail(cluster.members[0]!.logFile)}\n${cluster.tail(cluster.sentinels[0]!.logFile)}`);
    await sleep(100);
  }
}

/** A command on the Sentinel as `user` over TLS; the reply, or the error's message. */
async function onSentinel(user: string, password: string | undefined, ...command: string[]): Promise<unknown> {
  const client = new Redis({
    host: 'localhost',
    port: cluster.sentinels[0]!.port,
    ...(password ? { username: user, password } : {}),
    tls: { ca: readFileSync(cluster.caFile) },
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
}

describe.skipIf(skip !== undefined)(`Redis and its Sentinel as rendered${skip ? ` (skipped: ${skip})` : ''}`, () => {
  beforeAll(async () => {
    const { SentinelCluster } = await import('../../bench/drills/redis-sentinel-cluster.ts');
    cluster = await SentinelCluster.create({ members: 1, sentinels: 1, environment: 'ephemeral', log: () => {} });
    cluster.startMember(cluster.members[0]!);
    await waitFor('the member is ready', () => cluster.probe(cluster.members[0]!, 'redis-member.sh', 'ready'));
    cluster.startSentinel(cluster.sentinels[0]!);
    await waitFor('the Sentinel is ready', () => cluster.probe(cluster.sentinels[0]!, 'sentinel.sh', 'ready'));
  }, 60_000);
  afterAll(async () => {
    for (const client of clients) client.disconnect();
    await cluster?.stop();
  });

  it('starts the first member of a new cluster as its master, and the probes tell it alive and ready', async () => {
    const member = cluster.members[0]!;
    expect((await cluster.replication(member))?.role).toBe('master');
    expect(cluster.probe(member, 'redis-member.sh', 'live')).toBe(true);
    expect(cluster.probe(cluster.sentinels[0]!, 'sentinel.sh', 'live')).toBe(true);
    expect(readFileSync(member.logFile, 'utf8')).toContain(`redis-member: ${member.address} starts as the master`);
  });

  it('serves Sentinel over TLS only: a plaintext client gets no answer', async () => {
    const reply = await new Promise<string>((resolve) => {
      const socket = connect(cluster.sentinels[0]!.port, '127.0.0.1', () => socket.write('PING\r\n'));
      let data = '';
      socket.on('data', (chunk) => (data += chunk.toString()));
      socket.on('error', () => resolve(data));
      socket.on('close', () => resolve(data));
      setTimeout(() => {
        socket.destroy();
        resolve(data);
      }, 1500);
    });
    expect(reply).not.toContain('PONG');
  });

  it('lets the application ask Sentinel where the master is, and nothing that changes Sentinel', async () => {
    const app = cluster.passwords['app-password']!;
    expect(await onSentinel('allixios_app', app, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', MASTER_NAME)).toEqual(['localhost', String(cluster.members[0]!.port)]);
    for (const command of [
      ['SENTINEL', 'FAILOVER', MASTER_NAME],
      ['SENTINEL', 'SET', MASTER_NAME, 'down-after-milliseconds', '1'],
      ['SENTINEL', 'REMOVE', MASTER_NAME],
      ['SENTINEL', 'MASTERS'],
    ]) {
      expect(await onSentinel('allixios_app', app, ...command), command.join(' ')).toBe('NOPERM');
    }
    await expect(
      connectOnce(
        { host: 'localhost', port: cluster.sentinels[0]!.port, username: 'allixios_app', password: 'a-wrong-password', tls: { ca: readFileSync(cluster.caFile) } },
        clients,
      ),
    ).rejects.toThrow(/WRONGPASS/);
    // Nobody without a password: the default user is off.
    await expect(connectOnce({ host: 'localhost', port: cluster.sentinels[0]!.port, tls: { ca: readFileSync(cluster.caFile) } }, clients)).rejects.toThrow(/NOAUTH/);
  });

  it('connects a client built from the stack’s settings to the master through Sentinel, over TLS', async () => {
    const url = connectionUrl(cluster.spec.appConnection, cluster.passwords['app-password']!, 'localhost', 1, { caFile: cluster.caFile });
    const client = new Redis({
      ...sentinelClientOptions(url, cluster.sentinels.map((sentinel) => sentinel.address).join(','), MASTER_NAME),
      lazyConnect: true,
      maxRetriesPerRequest: 1,
    });
    client.on('error', () => {});
    clients.push(client);
    await client.connect();
    expect(await client.set('session:sentinel-test', 'yes', 'EX', 60)).toBe('OK');
    // The application's own rules hold behind Sentinel too.
    await expect(client.set('elsewhere:key', 'no')).rejects.toThrow(/NOPERM/);
  });

  it('gives the replication and Sentinel users on Redis no key at all', async () => {
    for (const [user, secret] of [
      ['allixios_replication', 'replication-password'],
      ['allixios_sentinel', 'sentinel-password'],
    ] as const) {
      const client = new Redis({
        host: 'localhost',
        port: cluster.members[0]!.port,
        username: user,
        password: cluster.passwords[secret],
        tls: { ca: readFileSync(cluster.caFile) },
        lazyConnect: true,
        enableReadyCheck: false,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      client.on('error', () => {});
      clients.push(client);
      await client.connect();
      await expect(client.get('session:sentinel-test'), user).rejects.toThrow(/NOPERM/);
      await expect(client.call('CONFIG', 'SET', 'maxmemory', '1'), user).rejects.toThrow(/NOPERM/);
    }
  });

  it('keeps a restarted Sentinel’s configuration, with what it learned', async () => {
    const sentinel = cluster.sentinels[0]!;
    cluster.kill(sentinel);
    cluster.startSentinel(sentinel);
    await waitFor('the Sentinel is ready again', () => cluster.probe(sentinel, 'sentinel.sh', 'ready'));
    expect(readFileSync(sentinel.logFile, 'utf8')).toContain(`sentinel: ${sentinel.address} keeps its configuration`);
    expect((await cluster.sentinelView(sentinel))?.port).toBe(String(cluster.members[0]!.port));
  });

  it('restarts Sentinel for a renewed certificate, and not for the one it started with', async () => {
    const sentinel = cluster.sentinels[0]!;
    const exited = new Promise<void>((resolve) => sentinel.process!.once('exit', () => resolve()));
    // The readiness check's first reload after a start: the same certificate, nothing happens
    expect(cluster.probe(sentinel, 'sentinel.sh', 'reload')).toBe(true);
    await sleep(300);
    expect(cluster.probe(sentinel, 'sentinel.sh', 'live')).toBe(true);
    // A renewal (the kubelet refreshed the mounted Secret): Sentinel stops, for the container to restart it
    appendFileSync(join(cluster.directory, 'tls', TLS_FILES.certificate), '\n');
    expect(cluster.probe(sentinel, 'sentinel.sh', 'reload')).toBe(true);
    await exited;
    expect(readFileSync(sentinel.logFile, 'utf8')).toMatch(/Received SIGTERM scheduling shutdown/);
  });
});
