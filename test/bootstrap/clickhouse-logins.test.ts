/**
 * The ClickHouse adapter's logins during a password rotation, on the wire: the real
 * `@clickhouse/client` against a small HTTP server that answers as a ClickHouse server does for
 * the few requests at hand (chdb, the embedded engine, has no users; no server runs here).
 * ClickHouse takes its users from users.d, which it reloads when the rotated Secret reaches its
 * mounted directory: the fake's accepted password changes the same way, from one request to the next.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterEach, describe, expect, it } from 'vitest';
import { ClickHouseAdapter } from '../../bootstrap/adapters/clickhouse-adapter.ts';
import { freePort } from '../support/engines.ts';

interface Request {
  query: string;
  /** The query's parameters (`{holder:String}` comes as `param_holder`). */
  params: URLSearchParams;
  /** The Basic credentials sent, decoded (`user:password`). */
  auth?: string;
}

let server: Server | undefined;
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

const REFUSED_BODY =
  'Code: 516. DB::Exception: allixios_admin: Authentication failed: password is incorrect, or there is no user with such name. (AUTHENTICATION_FAILED) (version 25.8.1.1)\n';

/** By default: an answer to `SELECT 'ping'` or, for the bootstrap's look at system.tables, no table (and a single server: no cluster in system.clusters). */
const pingOrNoTable = (request: Request) => (request.query.includes('system.clusters') ? '' : request.query.includes('system.tables') ? '{"n":"0"}\n' : 'ping\n');

/**
 * Starts the fake on a free port. `accepts` decides, per request, whether its credentials are
 * right: a wrong password gets ClickHouse's 516; a right one what `answer` says.
 */
async function fakeClickHouse(
  accepts: (auth: string | undefined) => boolean,
  answer: (request: Request) => string = pingOrNoTable,
): Promise<{ port: number; requests: Request[] }> {
  const requests: Request[] = [];
  server = createServer((incoming: IncomingMessage, response: ServerResponse) => {
    let body = '';
    incoming.on('data', (chunk: Buffer) => (body += chunk.toString()));
    incoming.on('end', () => {
      const basic = /^Basic (.+)$/.exec(incoming.headers.authorization ?? '');
      const params = new URL(incoming.url ?? '/', 'http://fake').searchParams;
      const query = params.get('query') ?? body;
      const request: Request = { query, params, ...(basic ? { auth: Buffer.from(basic[1]!, 'base64').toString() } : {}) };
      requests.push(request);
      if (!accepts(request.auth)) {
        response.writeHead(401, { 'content-type': 'text/plain; charset=UTF-8', 'x-clickhouse-exception-code': '516' });
        response.end(REFUSED_BODY);
        return;
      }
      response.writeHead(200, { 'content-type': 'text/plain; charset=UTF-8', 'x-clickhouse-summary': '{"read_rows":"1"}' });
      response.end(answer(request));
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return { port: (server!.address() as { port: number }).port, requests };
}

const url = (port: number, password: string, user = 'allixios_admin') => `http://${user}:${password}@127.0.0.1:${port}/allixios`;

function adapter(port: number, extra: Partial<ConstructorParameters<typeof ClickHouseAdapter>[1]> = {}) {
  return new ClickHouseAdapter(url(port, 'current-pw'), { readyTimeoutMs: 3_000, lockTimeoutMs: 3_000, ...extra });
}

describe('logging in during a password rotation', () => {
  it('logs in with the previous password while the server refuses the current one, waits for users.d to be reloaded, then works with the current one', async () => {
    // Given a server that has the previous password until it reloads users.d, after a few checks
    let reloaded = false;
    let checksOfCurrent = 0;
    const fake = await fakeClickHouse((auth) => {
      if (auth === 'allixios_admin:current-pw' && !reloaded && ++checksOfCurrent > 3) reloaded = true;
      return auth === (reloaded ? 'allixios_admin:current-pw' : 'allixios_admin:previous-pw');
    });
    const clickhouse = adapter(fake.port, { logins: { previousUrl: url(fake.port, 'previous-pw') } });
    try {
      // When the adapter connects
      await clickhouse.connect();
      // Then it is logged in with the previous password, and plans to wait for the reload
      expect(clickhouse.login).toBe('previous');
      const changes = await clickhouse.planCredentials();
      expect(changes).toEqual([
        {
          subject: 'user allixios_admin',
          action: 'update',
          detail: "the server still has the previous password: waiting for it to reload users.d from the engine's Secret",
          source: 'databases/clickhouse/config/users.d/allixios.xml',
          payload: { kind: 'wait' },
        },
      ]);
      expect(reloaded).toBe(false);
      // When the change is applied
      await clickhouse.applyCredential(changes[0]!);
      // Then it waited for the server to accept the current password
      expect(reloaded).toBe(true);
      expect(clickhouse.login).toBe('current');
      // and what follows goes with the current password
      const before = fake.requests.length;
      expect(await clickhouse.observe()).toEqual([]);
      expect(fake.requests.slice(before).map((request) => request.auth)).toEqual(['allixios_admin:current-pw']);
    } finally {
      await clickhouse.close();
    }
  });

  it('plans nothing once the server accepts the current password (a reload before the plan)', async () => {
    // Given an adapter logged in with the previous password
    let accepted = 'allixios_admin:previous-pw';
    const fake = await fakeClickHouse((auth) => auth === accepted);
    const clickhouse = adapter(fake.port, { logins: { previousUrl: url(fake.port, 'previous-pw') } });
    try {
      await clickhouse.connect();
      expect(clickhouse.login).toBe('previous');
      // When the server reloads users.d before the adapter plans
      accepted = 'allixios_admin:current-pw';
      // Then there is nothing to wait for, and the adapter works with the current password
      expect(await clickhouse.planCredentials()).toEqual([]);
      expect(clickhouse.login).toBe('current');
    } finally {
      await clickhouse.close();
    }
  });

  it('names both refusals, at once, when the server accepts neither the current nor the previous password', async () => {
    const fake = await fakeClickHouse(() => false);
    const clickhouse = adapter(fake.port, { readyTimeoutMs: 10_000, logins: { previousUrl: url(fake.port, 'previous-pw') } });
    const started = Date.now();
    const error = await clickhouse.connect().then(
      () => undefined,
      (reason: Error) => reason,
    );
    expect(error?.message).toMatch(
      /^clickhouse: allixios_admin: the engine refuses the stack's current password and the previous one the rotation keeps \(current: allixios_admin: Authentication failed: .*; previous: allixios_admin: Authentication failed: /,
    );
    expect(error?.message).not.toMatch(/current-pw|previous-pw/);
    // A refused login is not waited on
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(new Set(fake.requests.map((request) => request.auth))).toEqual(new Set(['allixios_admin:current-pw', 'allixios_admin:previous-pw']));
    await clickhouse.close();
  });

  it('refuses a wrong password at once without a previous one, naming the user and the server', async () => {
    const fake = await fakeClickHouse(() => false);
    const error = await adapter(fake.port, { readyTimeoutMs: 10_000 })
      .connect()
      .then(
        () => undefined,
        (reason: Error) => reason,
      );
    expect(error?.message).toMatch(
      /^clickhouse: cannot connect to 127\.0\.0\.1:\d+\/allixios as allixios_admin: allixios_admin: Authentication failed: .* \[AUTHENTICATION_FAILED\]$/,
    );
    expect(fake.requests).toHaveLength(1);
  });

  it('still waits for a server that does not answer yet, within the readiness timeout', async () => {
    const port = await freePort();
    const error = await adapter(port, { readyTimeoutMs: 700 })
      .connect()
      .then(
        () => undefined,
        (reason: Error) => reason,
      );
    expect(error?.message).toMatch(new RegExp(`^clickhouse: not reachable at 127\\.0\\.0\\.1:${port}/allixios after 0\\.[7-9] s \\(.*ECONNREFUSED`));
  });
});

describe('the lock across the reload', () => {
  it("keeps its lease when a renewal with the previous password is refused between the server's reload of users.d and the switch", async () => {
    // Given a server with the bookkeeping tables, whose lease table knows one holder
    let accepted = 'allixios_admin:previous-pw';
    let holder: string | undefined;
    const fake = await fakeClickHouse(
      (auth) => auth === accepted,
      (request) => {
        if (request.query.includes('system.tables')) return '{"n":"1"}\n';
        if (request.query.startsWith('INSERT INTO allixios_bootstrap.lock')) holder ??= request.params.get('param_holder') ?? undefined;
        if (request.query.includes('FROM allixios_bootstrap.lock') && holder) return `${JSON.stringify({ holder, acquired_at: '2026-01-01 00:00:00.000' })}\n`;
        return '';
      },
    );
    const clickhouse = adapter(fake.port, { lockLeaseMs: 600, logins: { previousUrl: url(fake.port, 'previous-pw') } });
    try {
      // and an adapter that logged in with the previous password and holds the lock (renewed every 200 ms)
      await clickhouse.connect();
      await clickhouse.lock();
      // When the server reloads users.d, and renewals with the previous password are refused before the adapter switches
      accepted = 'allixios_admin:current-pw';
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(fake.requests.some((request) => request.auth === 'allixios_admin:previous-pw' && request.query.startsWith('INSERT INTO allixios_bootstrap.lock'))).toBe(true);
      expect(await clickhouse.planCredentials()).toEqual([]);
      // Then the lease is renewed with the current password, and the adapter still applies under its lock
      expect(fake.requests.at(-1)).toMatchObject({ auth: 'allixios_admin:current-pw' });
      const content = 'SELECT 1;';
      const asset = {
        engine: 'clickhouse',
        kind: 'versioned',
        version: 1,
        name: 'V0001__x.sql',
        description: 'x',
        path: 'V0001__x.sql',
        content,
        checksum: 'x',
        transactional: false,
      } as const;
      await clickhouse.apply({ subject: 'V0001 x', action: 'apply', detail: 'not applied yet', source: asset.path, payload: { reason: 'pending', asset } });
    } finally {
      await clickhouse.close();
    }
  });
});

describe("checking the application's login", () => {
  it('waits until the server accepts it (users.d reloading), each check with a fresh client', async () => {
    // Given a server that refuses the application's new password twice, then accepts it
    let checks = 0;
    const fake = await fakeClickHouse((auth) => auth === 'allixios_app:app-pw' && ++checks > 2);
    // When it is verified / Then it is, after three checks
    await adapter(fake.port).verifyLogin(url(fake.port, 'app-pw', 'allixios_app'));
    expect(fake.requests.filter((request) => request.auth === 'allixios_app:app-pw').map((request) => request.query)).toEqual(["SELECT 'ping'", "SELECT 'ping'", "SELECT 'ping'"]);
  });

  it('gives up on a login still refused after the readiness timeout, naming the user', async () => {
    const fake = await fakeClickHouse(() => false);
    await expect(adapter(fake.port, { readyTimeoutMs: 800 }).verifyLogin(url(fake.port, 'app-pw', 'allixios_app'))).rejects.toThrow(
      /^clickhouse: the login allixios_app is still refused after 0\.\d s \(refused: allixios_admin: Authentication failed/,
    );
  });
});

describe('an injected client (chdb)', () => {
  it('has no logins: nothing to plan, and no application login to check', async () => {
    // Given a client that answers every ping, and an application URL nothing listens on
    const client = { ping: async () => ({ success: true }) } as unknown as ClickHouseClient;
    const clickhouse = new ClickHouseAdapter(undefined, { readyTimeoutMs: 60_000, lockTimeoutMs: 1_000, client, logins: { previousUrl: 'http://x:y@127.0.0.1:1' } });
    await clickhouse.connect();
    // Then nothing is planned or checked (a check would wait out the minute)
    expect(clickhouse.login).toBeUndefined();
    expect(await clickhouse.planCredentials()).toEqual([]);
    await clickhouse.verifyLogin(`http://allixios_app:pw@127.0.0.1:${await freePort()}`);
  });
});
