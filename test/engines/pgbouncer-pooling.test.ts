/**
 * The pooling drill: a real PgBouncer 1.18 with the project's rendered pgbouncer.ini and auth file
 * (databases/postgresql/pgbouncer.ts; only ports and paths mapped) in front of a real PostgreSQL 18
 * with the project's roles (initdb/10-roles.sh) and schema (the real bootstrap), in transaction
 * mode with a pool of 5 server connections.
 *
 * - 50 clients of allixios_app, each claiming another user with the platform's claim pattern
 *   (BEGIN; SELECT app_claim(...)), write and read through the pool at once: no transaction sees
 *   another's claim or rows, and the server never holds more than 5 of the role's backends.
 * - The wrong pattern, a claim set for the session (set_config(..., false)), does reach the next
 *   client of the same server connection under PgBouncer's default for transaction mode (no
 *   reset), and does not under the project's configuration (reset after every transaction).
 * - The bootstrap through the pooler is refused, with an error that names the pooler.
 *
 * Timings are not asserted (npm run bench:pooling measures them); the bounds here are generous.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMBEDDED_PASSWORDS, startEmbeddedPostgres, type EmbeddedPostgresServer } from '../../bootstrap/embedded/postgresql.ts';
import { runBootstrap } from '../../bootstrap/runner.ts';
import { APP_SESSION_OPTIONS } from '../../databases/postgresql/index.ts';
import { scramSha256Verifier } from '../../databases/secret-files.ts';
import { requirePgBouncer, startProjectPgBouncer, type ProjectPgBouncer } from '../support/pgbouncer.ts';
import { applyPostgresAssets, claim } from '../support/postgres.ts';

const SECRETS = { 'app-password': EMBEDDED_PASSWORDS.allixios_app, 'pgbouncer-stats-password': 'stats-test-password' };
const CLIENTS = 50;
const POOL = 5;
const TRANSACTIONS_PER_CLIENT = 6;

let server: EmbeddedPostgresServer;
let pooler: ProjectPgBouncer;
let category: string;
/** One author per client, each with one draft of their own; and one published article. */
const authors: string[] = [];

/** The platform's DATABASE_URL through PgBouncer: the app role, its password, and the pinned options. */
const appUrl = (bouncer: ProjectPgBouncer) => `${bouncer.url}?options=${encodeURIComponent(APP_SESSION_OPTIONS)}`;

async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  requirePgBouncer();
  server = await startEmbeddedPostgres();
  await applyPostgresAssets(server.url('allixios_owner'));
  await withClient(server.url('allixios_owner'), async (owner) => {
    await owner.query('BEGIN');
    category = (await owner.query<{ id: string }>(`INSERT INTO categories (slug, name) VALUES ('drill', 'Drill') RETURNING id`)).rows[0]!.id;
    for (let i = 0; i < CLIENTS; i++) {
      const { rows } = await owner.query<{ id: string }>(`INSERT INTO users (email, display_name, role) VALUES ($1, $2, 'author') RETURNING id`, [
        `author${i}@example.com`,
        `Author ${i}`,
      ]);
      authors.push(rows[0]!.id);
      await owner.query(`INSERT INTO articles (title, body, status, author_id, category_id) VALUES ($1, 'Private draft', 'draft', $2, $3)`, [
        `Draft of author ${i}`,
        rows[0]!.id,
        category,
      ]);
    }
    await owner.query(`INSERT INTO articles (title, body, status, author_id, category_id, published_at) VALUES ('Public', 'Public text', 'published', $1, $2, now())`, [
      authors[0],
      category,
    ]);
    await owner.query('COMMIT');
  });
  pooler = await startProjectPgBouncer(server, SECRETS, { sizes: { maxDbConnections: POOL, defaultPoolSize: POOL, reservePoolSize: 0 } });
}, 120_000);

afterAll(async () => {
  await pooler?.stop();
  await server?.stop();
});

/** The most backends of allixios_app the server had at once, sampled while `work` runs. */
async function peakAppBackends<T>(work: () => Promise<T>): Promise<{ result: T; peak: number; samples: number }> {
  const monitor = new pg.Client({ connectionString: server.url('postgres') });
  await monitor.connect();
  let peak = 0;
  let samples = 0;
  let running = true;
  const sampling = (async () => {
    while (running) {
      const { rows } = await monitor.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = 'allixios_app'`);
      peak = Math.max(peak, rows[0]!.n);
      samples += 1;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();
  try {
    return { result: await work(), peak, samples };
  } finally {
    running = false;
    await sampling;
    await monitor.end();
  }
}

interface Seen {
  client: number;
  claimAtStart: string;
  claimAtEnd: string;
  pid: number;
  draftAuthors: string[];
  ownDrafts: number;
}

describe('PgBouncer (transaction mode, the project configuration) in front of the platform', () => {
  it(`${CLIENTS} clients claiming ${CLIENTS} users through ${POOL} server connections: no transaction sees another's claim or rows`, async () => {
    // Given 50 application clients, each acting for its own author, connected through PgBouncer
    const clients = await Promise.all(
      authors.map(async () => {
        const client = new pg.Client({ connectionString: appUrl(pooler) });
        await client.connect();
        return client;
      }),
    );
    try {
      // When each runs transactions at once, claiming with app_claim() after BEGIN, writing a draft and reading drafts
      const { result: seen, peak } = await peakAppBackends(() =>
        Promise.all(
          clients.map(async (client, index) => {
            const me = authors[index]!;
            const transactions: Seen[] = [];
            for (let round = 0; round < TRANSACTIONS_PER_CLIENT; round++) {
              await client.query('BEGIN');
              await claim(client, 'author', me);
              const start = await client.query<{ claim: string; pid: number }>(`SELECT current_setting('app.user_id') AS claim, pg_backend_pid() AS pid`);
              await client.query(`INSERT INTO articles (title, body, status, author_id, category_id) VALUES ($1, 'Drill draft', 'draft', $2, $3)`, [
                `Drill ${index}.${round}`,
                me,
                category,
              ]);
              // Holds the server connection a little, so that the other clients' transactions queue and interleave.
              await client.query('SELECT pg_sleep(0.002)');
              const drafts = await client.query<{ author_id: string }>(`SELECT author_id FROM articles WHERE status = 'draft'`);
              const end = await client.query<{ claim: string }>(`SELECT current_setting('app.user_id') AS claim`);
              await client.query('COMMIT');
              transactions.push({
                client: index,
                claimAtStart: start.rows[0]!.claim,
                claimAtEnd: end.rows[0]!.claim,
                pid: start.rows[0]!.pid,
                draftAuthors: [...new Set(drafts.rows.map((row) => row.author_id))],
                ownDrafts: drafts.rows.length,
              });
            }
            return transactions;
          }),
        ),
      );
      const all = seen.flat();

      // Then every transaction saw its own claim, from its first statement to its last
      expect(all).toHaveLength(CLIENTS * TRANSACTIONS_PER_CLIENT);
      expect(all.filter((t) => t.claimAtStart !== authors[t.client] || t.claimAtEnd !== authors[t.client])).toEqual([]);
      // and only its own author's drafts: the seeded one and those it wrote so far, no other's
      expect(all.filter((t) => t.draftAuthors.length !== 1 || t.draftAuthors[0] !== authors[t.client])).toEqual([]);
      for (const transactions of seen) expect(transactions.map((t) => t.ownDrafts)).toEqual(Array.from({ length: TRANSACTIONS_PER_CLIENT }, (_, round) => round + 2));
      // And the 50 clients shared at most 5 server connections, all of them used
      const pids = new Set(all.map((t) => t.pid));
      expect(pids.size).toBeLessThanOrEqual(POOL);
      expect(pids.size).toBeGreaterThan(1);
      expect(peak).toBeLessThanOrEqual(POOL);
      expect(peak).toBeGreaterThan(1);
      // And every draft was committed under its writer's id
      const counts = await withClient(
        server.url('allixios_owner'),
        async (owner) =>
          (await owner.query<{ author_id: string; n: number }>(`SELECT author_id, count(*)::int AS n FROM articles WHERE title LIKE 'Drill %' GROUP BY author_id`)).rows,
      );
      expect(counts).toHaveLength(CLIENTS);
      expect(counts.every((row) => row.n === TRANSACTIONS_PER_CLIENT)).toBe(true);
    } finally {
      await Promise.all(clients.map((client) => client.end()));
    }
  }, 60_000);

  it("logs in with SCRAM from verifiers only, and pins the application's settings on the server connection", async () => {
    // Given the rendered auth file, and a client asking for other settings in its startup options
    expect(pooler.userlist).not.toContain(SECRETS['app-password']);
    const url = `${pooler.url}?options=${encodeURIComponent('-c statement_timeout=0 -c row_security=off')}`;
    // When it connects through PgBouncer (the server stores the same verifier PgBouncer holds)
    const settings = await withClient(url, async (client) => {
      const { rows } = await client.query<{ statement_timeout: string; row_security: string; search_path: string; user: string }>(
        `SELECT current_setting('statement_timeout') AS statement_timeout, current_setting('row_security') AS row_security, current_setting('search_path') AS search_path, current_user AS user`,
      );
      return rows[0];
    });
    // Then it is logged in as itself, with the pinned settings, whatever its options asked for
    expect(settings).toEqual({ statement_timeout: '15s', row_security: 'on', search_path: 'public', user: 'allixios_app' });
    // And a wrong password is refused by PgBouncer
    const wrong = pooler.url.replace(encodeURIComponent(SECRETS['app-password']), 'not-the-password');
    await expect(withClient(wrong, (client) => client.query('SELECT 1'))).rejects.toThrow(/authentication failed/);
    expect(pooler.log()).not.toMatch(/broken auth file/);
  });

  it('takes a rotated password from its re-read auth file on SIGHUP, without a restart or a dropped client', async () => {
    const rotatedPassword = 'rotated-app-password-0123456789';
    const setVerifier = (password: string) =>
      withClient(server.url('postgres'), (admin) => admin.query(`ALTER ROLE allixios_app PASSWORD '${scramSha256Verifier(password, 'app-password')}'`));
    // Given a client connected through PgBouncer before the rotation
    const before = new pg.Client({ connectionString: appUrl(pooler) });
    await before.connect();
    try {
      // When the server gets the rotated verifier (the bootstrap's work) and the pod's auth file is
      // refreshed and PgBouncer told to re-read it (the readiness check's SIGHUP)
      await setVerifier(rotatedPassword);
      await pooler.rotate({ ...SECRETS, 'app-password': rotatedPassword });
      // Then the new password logs in through PgBouncer, the old one no longer does
      const rotatedUrl = appUrl(pooler).replace(encodeURIComponent(SECRETS['app-password']), encodeURIComponent(rotatedPassword));
      expect(await withClient(rotatedUrl, async (client) => (await client.query<{ user: string }>('SELECT current_user AS user')).rows[0]!.user)).toBe('allixios_app');
      await expect(withClient(appUrl(pooler), (client) => client.query('SELECT 1'))).rejects.toThrow(/authentication failed/);
      // And the client connected before keeps working
      expect((await before.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one).toBe(1);
    } finally {
      await before.end();
      await setVerifier(SECRETS['app-password']);
      await pooler.rotate(SECRETS);
    }
  });
});

describe('a claim set for the session (set_config(..., false)), the wrong pattern, through transaction pooling', () => {
  /** A leaves a session claim and a session timeout behind; then B, on the only server connection, looks. */
  async function leakScenario(reset: boolean) {
    const bouncer = await startProjectPgBouncer(server, SECRETS, { sizes: { maxDbConnections: 1, defaultPoolSize: 1, reservePoolSize: 0 }, resetAfterEveryTransaction: reset });
    const a = new pg.Client({ connectionString: appUrl(bouncer) });
    const b = new pg.Client({ connectionString: appUrl(bouncer) });
    try {
      await a.connect();
      await b.connect();
      await a.query('BEGIN');
      const pidA = (
        await a.query<{ pid: number }>(
          `SELECT pg_backend_pid() AS pid, set_config('app.user_id', $1, false), set_config('app.user_role', 'author', false), set_config('statement_timeout', '0', false)`,
          [authors[1]],
        )
      ).rows[0]!.pid;
      await a.query('COMMIT');
      await b.query('BEGIN');
      const { rows } = await b.query<{ pid: number; claim: string; statement_timeout: string }>(
        `SELECT pg_backend_pid() AS pid, coalesce(current_setting('app.user_id', true), '') AS claim, current_setting('statement_timeout') AS statement_timeout`,
      );
      const visible = (await b.query<{ title: string }>(`SELECT title FROM articles ORDER BY title`)).rows.map((row) => row.title);
      await b.query('COMMIT');
      // B then claims properly: the claim pattern works on that connection whatever was left in it.
      await b.query('BEGIN');
      await claim(b, 'author', authors[2]!);
      const claimed = (await b.query<{ author_id: string }>(`SELECT DISTINCT author_id FROM articles WHERE status = 'draft'`)).rows.map((row) => row.author_id);
      await b.query('COMMIT');
      return { sameServerConnection: rows[0]!.pid === pidA, claim: rows[0]!.claim, statementTimeout: rows[0]!.statement_timeout, visible, claimed };
    } finally {
      await Promise.all([a.end(), b.end()]);
      await bouncer.stop();
    }
  }

  it("without a reset (PgBouncer's default in transaction mode) it reaches the next client, whom the claim's stamp then shows nothing", async () => {
    const seen = await leakScenario(false);
    // Then B, on A's server connection, sees A's claim and A's timeout
    expect(seen.sameServerConnection).toBe(true);
    expect(seen.claim).toBe(authors[1]);
    expect(seen.statementTimeout).toBe('0');
    // but the leaked claim grants nothing (V0010: a claim not made in this transaction is the claim
    // "none"): not A's draft, not even the published article an anonymous visitor sees
    expect(seen.visible).toEqual([]);
    // and B's own claim, made as the platform makes it, is B's alone
    expect(seen.claimed).toEqual([authors[2]]);
  });

  it('with the project configuration (reset after every transaction) it ends with its transaction', async () => {
    const seen = await leakScenario(true);
    // Then B, on the same server connection, finds neither the claim nor the timeout
    expect(seen.sameServerConnection).toBe(true);
    expect(seen.claim).toBe('');
    expect(seen.statementTimeout).toBe('15s');
    // and sees what an anonymous visitor sees
    expect(seen.visible).toEqual(['Public']);
    expect(seen.claimed).toEqual([authors[2]]);
  });
});

describe('the bootstrap through PgBouncer', () => {
  const ownerThrough = (bouncer: ProjectPgBouncer) =>
    bouncer.url.replace(`allixios_app:${encodeURIComponent(SECRETS['app-password'])}`, `allixios_owner:${encodeURIComponent(EMBEDDED_PASSWORDS.allixios_owner)}`);
  const bootstrap = (url: string) => runBootstrap({ mode: 'apply', env: { DATABASE_URL: url }, only: ['postgresql'], readyTimeoutMs: 3_000, lockTimeoutMs: 5_000 });

  it("is refused at login by the project's PgBouncer, which admits the application's role only", async () => {
    const report = await bootstrap(ownerThrough(pooler));
    expect(report.ok).toBe(false);
    expect(report.engines[0]!.error).toMatch(
      /looks like a connection pooler, not PostgreSQL itself \(it refused the login with "SASL authentication failed" \[08P01\].*point the bootstrap's DATABASE_URL at the server/,
    );
  });

  it('refuses to run, naming the pooler, when the owner is admitted too (a misconfiguration)', async () => {
    // Given PgBouncer with the project's configuration and the owner in its auth file
    const bouncer = await startProjectPgBouncer(server, SECRETS, {
      sizes: { maxDbConnections: 2, defaultPoolSize: 2, reservePoolSize: 0 },
      extraUsers: `"allixios_owner" "${scramSha256Verifier(EMBEDDED_PASSWORDS.allixios_owner, 'owner-password')}"\n`,
    });
    try {
      // When the bootstrap runs through it
      const report = await bootstrap(ownerThrough(bouncer));
      // Then it refuses: its startup options (lock and statement timeouts) did not reach the server
      expect(report.ok).toBe(false);
      expect(report.engines[0]!.error).toMatch(/looks like a connection pooler, not PostgreSQL itself \(the settings it connected with did not reach the server/);
    } finally {
      await bouncer.stop();
    }
  });
});
