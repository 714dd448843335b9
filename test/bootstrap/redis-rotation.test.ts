/**
 * Password rotation on a real redis-server 7 (README "Rotating a password"), in the two steps
 * of a rotation without downtime. A Redis user may hold two passwords: while the stack keeps the
 * previous password, users.acl gives every user both, and the bootstrap (logging in with the
 * admin's previous password) adds the new ones to the running server, so clients still on the
 * old URL and clients already on the new one both get in. Retiring the previous password takes
 * it off the server and ends the sessions opened with it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACL_SOURCE } from '../../bootstrap/adapters/redis-files.ts';
import { startEmbeddedRedis, type EmbeddedRedisServer } from '../../bootstrap/embedded/redis.ts';
import { withPasswords } from '../../bootstrap/env.ts';
import { runBootstrap } from '../../bootstrap/runner.ts';
import { redis } from '../../databases/redis/index.ts';
import { renderSecretFile } from '../../databases/secret-files.ts';
import { connectOnce } from '../support/redis.ts';
import { toError } from '../../bootstrap/errors.ts';

const template = readFileSync(join(redis.directory, ACL_SOURCE), 'utf8');
/** The passwords after the rotation: every Redis secret got a new generation. */
const ROTATED = {
  'admin-password': 'rotated-admin-password-00001',
  'app-password': 'rotated-app-password-000001',
  'monitor-password': 'rotated-monitor-password-01',
  'replication-password': 'rotated-replication-password-1',
  'sentinel-password': 'rotated-sentinel-password-001',
  'sentinel-peer-password': 'rotated-sentinel-peer-password',
  'backup-password': 'rotated-backup-password-0001',
};
const USER_SECRET = {
  allixios_admin: 'admin-password',
  allixios_app: 'app-password',
  allixios_monitor: 'monitor-password',
  allixios_replication: 'replication-password',
  allixios_sentinel: 'sentinel-password',
  allixios_backup: 'backup-password',
} as const;

let server: EmbeddedRedisServer;
/** The passwords the server started with, by secret key. */
let original: Record<string, string>;
const clients: Redis[] = [];

const urlOf = (user: string, password: string) => `redis://${user}:${encodeURIComponent(password)}@127.0.0.1:${server.port}/0`;
const withoutPassword = (user: string) => `redis://${user}@127.0.0.1:${server.port}/0`;

async function logsIn(user: string, password: string): Promise<true | string> {
  try {
    const client = await connectOnce(urlOf(user, password), clients);
    return (await client.ping()) === 'PONG' ? true : 'no PONG';
  } catch (error) {
    const reply = toError(error).message.split(' ')[0]!;
    // allixios_backup may not PING: NOPERM (not WRONGPASS) is the answer to a user that logged in.
    return reply === 'NOPERM' && user === 'allixios_backup' ? true : reply;
  }
}

/** The bootstrap as the Job runs it, for one step of the rotation. */
function bootstrap(step: { acl: string; previousAdmin?: string }) {
  return runBootstrap({
    mode: 'apply',
    only: ['redis'],
    env: withPasswords(
      {
        REDIS_URL: withoutPassword('allixios_admin'),
        REDIS_URL_PASSWORD: ROTATED['admin-password'],
        ...(step.previousAdmin ? { REDIS_URL_PREVIOUS_PASSWORD: step.previousAdmin } : {}),
        REDIS_URL_APP: withoutPassword('allixios_app'),
        REDIS_URL_APP_PASSWORD: ROTATED['app-password'],
        REDIS_USERS_ACL: step.acl,
      },
      ['REDIS_URL'],
    ),
    readyTimeoutMs: 5000,
    lockTimeoutMs: 10_000,
  });
}

beforeAll(async () => {
  server = await startEmbeddedRedis();
  original = Object.fromEntries(Object.entries(USER_SECRET).map(([user, key]) => [key, server.passwords[user]!]));
});
afterAll(async () => {
  await Promise.all(clients.splice(0).map((client) => client.quit().catch(() => client.disconnect())));
  await server?.stop();
});

describe('rotating every Redis password without downtime', () => {
  let sessionBefore: Redis;

  it('first step: the server takes the new passwords beside the old ones, and a session opened before keeps working', async () => {
    // Given a platform session opened with the old application password
    sessionBefore = await connectOnce(server.url('allixios_app'), clients);
    // When the bootstrap runs with the new passwords, users.acl listing new and previous, and
    // the admin's previous password
    const report = await bootstrap({ acl: renderSecretFile(template, ROTATED, ACL_SOURCE, original), previousAdmin: original['admin-password'] });
    // Then it logged in with the previous admin password, gave every user its second password,
    // and saw the application's new URL accepted
    expect(report.ok, report.engines[0]?.error).toBe(true);
    expect(report.engines[0]!.login).toBe('previous');
    expect(report.engines[0]!.changed.map(({ change }) => change.subject).sort()).toEqual(
      Object.keys(USER_SECRET)
        .map((user) => `ACL user ${user}`)
        .sort(),
    );
    expect(report.engines[0]!.verifiedLogin).toBe('allixios_app');
    // And both passwords of every user work, for clients on either URL
    for (const [user, key] of Object.entries(USER_SECRET)) {
      expect(await logsIn(user, ROTATED[key]), `${user}, new`).toBe(true);
      expect(await logsIn(user, original[key]!), `${user}, old`).toBe(true);
    }
    expect(await sessionBefore.ping()).toBe('PONG');
  });

  it('second step: retiring the previous passwords takes them off the server and ends the sessions of the user', async () => {
    // When the stack retires the previous passwords (users.acl with the new ones only)
    const report = await bootstrap({ acl: renderSecretFile(template, ROTATED, ACL_SOURCE) });
    // Then the bootstrap logs in with the current password and takes the old ones away
    expect(report.ok, report.engines[0]?.error).toBe(true);
    expect(report.engines[0]!.login).toBe('current');
    expect(report.engines[0]!.changed.map(({ change }) => change.subject).sort()).toEqual(
      Object.keys(USER_SECRET)
        .map((user) => `ACL user ${user}`)
        .sort(),
    );
    for (const [user, key] of Object.entries(USER_SECRET)) {
      expect(await logsIn(user, ROTATED[key]), `${user}, new`).toBe(true);
      expect(await logsIn(user, original[key]!), `${user}, old`).toBe('WRONGPASS');
    }
    // And a session that may have logged in with an old password is closed (the platform's
    // client reconnects, with the URL it now has)
    await expect(sessionBefore.ping()).rejects.toThrow();
  });

  it('changes nothing once the rotation is done', async () => {
    const report = await bootstrap({ acl: renderSecretFile(template, ROTATED, ACL_SOURCE) });
    expect(report.ok).toBe(true);
    expect(report.engines[0]!.changed).toEqual([]);
  });
});
