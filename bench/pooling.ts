/**
 * `npm run bench:pooling -- [--runs <n>] [--seconds <s>] [--clients <n>] [--pool <n>]`: the
 * platform's transaction (BEGIN, app_claim(), the author's drafts, a new draft, COMMIT) run by
 * `--clients` clients of allixios_app at once for `--seconds`, against an embedded PostgreSQL 18
 * with the project's roles and schema:
 *
 * - direct: each client its own server connection;
 * - pooled: through PgBouncer with the project's configuration (databases/postgresql/pgbouncer.ts),
 *   `--pool` server connections, the reset after every transaction;
 * - pooled, no reset: the same without the reset (PgBouncer's default for transaction pooling,
 *   never deployed), to show what the reset costs.
 *
 * The variants run interleaved, one of each per round in a rotating order, after one unmeasured
 * warm-up each. Prints a Markdown table and writes bench/results/pooling-<date>.json. Timings are
 * reported, never asserted (test/engines/pgbouncer-pooling.test.ts proves the isolation).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { applyAssets } from '../bootstrap/apply.ts';
import { defineCommand, positiveInteger, UsageError } from '../bootstrap/command-line.ts';
import { EMBEDDED_PASSWORDS, startEmbeddedPostgres, type EmbeddedPostgresServer } from '../bootstrap/embedded/postgresql.ts';
import { REPOSITORY_ROOT } from '../bootstrap/paths.ts';
import { APP_SESSION_OPTIONS } from '../databases/postgresql/index.ts';
import { startProjectPgBouncer, type ProjectPgBouncer } from '../test/support/pgbouncer.ts';
import { percentile } from './stats.ts';

const command = defineCommand({
  name: 'bench:pooling',
  synopsis: ['npm run bench:pooling -- [options]'],
  summary: "Measures the platform's claim transaction direct and through the project's PgBouncer (transaction pooling), interleaved, and writes bench/results/pooling-<date>.json.",
  options: {
    runs: { type: 'string', value: '<n>', default: '3', description: 'measured runs of each variant' },
    seconds: { type: 'string', value: '<s>', default: '5', description: 'length of each run' },
    clients: { type: 'string', value: '<n>', default: '50', description: 'concurrent clients of allixios_app' },
    pool: { type: 'string', value: '<n>', default: '5', description: "PgBouncer's server connections" },
  },
  exitCodes: { ok: 'measured', failed: 'setup or a run failed' },
});

const { values } = command.parse();
let options: { runs: number; seconds: number; clients: number; pool: number };
try {
  options = {
    runs: positiveInteger(values.runs, '--runs'),
    seconds: positiveInteger(values.seconds, '--seconds'),
    clients: positiveInteger(values.clients, '--clients'),
    pool: positiveInteger(values.pool, '--pool'),
  };
} catch (error) {
  options = command.fail(error instanceof UsageError ? error.message : String(error));
}

const log = (line: string) => process.stderr.write(`${line}\n`);
const SECRETS = { 'app-password': EMBEDDED_PASSWORDS.allixios_app, 'pgbouncer-stats-password': 'bench-stats-password' };

interface Variant {
  label: string;
  /** The application's URL for this variant (with the pinned options, as DATABASE_URL has them). */
  url: string;
}

interface Run {
  transactions: number;
  seconds: number;
  tps: number;
  /** Milliseconds per transaction, as a client sees it (waiting for a server connection included). */
  p50: number;
  p95: number;
  p99: number;
}

async function seed(server: EmbeddedPostgresServer, count: number): Promise<{ authors: string[]; category: string }> {
  const owner = new pg.Client({ connectionString: server.url('allixios_owner') });
  await owner.connect();
  try {
    await owner.query('BEGIN');
    const category = (await owner.query<{ id: string }>(`INSERT INTO categories (slug, name) VALUES ('bench', 'Bench') RETURNING id`)).rows[0]!.id;
    const authors: string[] = [];
    for (let i = 0; i < count; i++) {
      const { rows } = await owner.query<{ id: string }>(`INSERT INTO users (email, display_name, role) VALUES ($1, $2, 'author') RETURNING id`, [
        `bench${i}@example.com`,
        `Bench ${i}`,
      ]);
      authors.push(rows[0]!.id);
      await owner.query(`INSERT INTO articles (title, body, status, author_id, category_id) VALUES ($1, 'Draft', 'draft', $2, $3)`, [`Seed ${i}`, rows[0]!.id, category]);
    }
    await owner.query('COMMIT');
    return { authors, category };
  } finally {
    await owner.end();
  }
}

/** `clients` clients, each its own connection to `url`, running the claim transaction for `seconds`. */
async function runOnce(url: string, authors: readonly string[], category: string, seconds: number): Promise<Run> {
  const clients = await Promise.all(
    authors.map(async () => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      return client;
    }),
  );
  const latencies: number[] = [];
  const started = performance.now();
  const deadline = started + seconds * 1000;
  let counter = 0;
  try {
    await Promise.all(
      clients.map(async (client, index) => {
        while (performance.now() < deadline) {
          const begun = performance.now();
          await client.query('BEGIN');
          await client.query('SELECT app_claim($1, $2)', [authors[index], 'author']);
          await client.query(`SELECT id, title FROM articles WHERE author_id = $1 AND status = 'draft' ORDER BY updated_at DESC LIMIT 20`, [authors[index]]);
          await client.query(`INSERT INTO articles (title, body, status, author_id, category_id) VALUES ($1, 'Bench draft', 'draft', $2, $3)`, [
            `Bench ${index}.${counter++}`,
            authors[index],
            category,
          ]);
          await client.query('COMMIT');
          latencies.push(performance.now() - begun);
        }
      }),
    );
  } finally {
    await Promise.all(clients.map((client) => client.end()));
  }
  const elapsed = (performance.now() - started) / 1000;
  const sorted = latencies.sort((a, b) => a - b);
  return { transactions: sorted.length, seconds: elapsed, tps: sorted.length / elapsed, p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99) };
}

const median = (numbers: number[]) =>
  percentile(
    [...numbers].sort((a, b) => a - b),
    50,
  );

let server: EmbeddedPostgresServer | undefined;
const poolers: ProjectPgBouncer[] = [];
try {
  const loadBefore = loadavg();
  log('starting an embedded PostgreSQL 18 with the roles, and applying the schema');
  server = await startEmbeddedPostgres();
  await applyAssets('postgresql', { env: { DATABASE_URL: server.url('allixios_owner') } });
  const { authors, category } = await seed(server, options.clients);
  const sizes = { maxDbConnections: options.pool, defaultPoolSize: options.pool, reservePoolSize: 0 };
  const pooled = await startProjectPgBouncer(server, SECRETS, { sizes });
  const noReset = await startProjectPgBouncer(server, SECRETS, { sizes, resetAfterEveryTransaction: false });
  poolers.push(pooled, noReset);
  const withOptions = (url: string) => `${url}?options=${encodeURIComponent(APP_SESSION_OPTIONS)}`;
  const variants: Variant[] = [
    { label: `direct (${options.clients} server connections)`, url: withOptions(server.url('allixios_app')) },
    { label: `PgBouncer, project configuration (${options.pool} server connections)`, url: withOptions(pooled.url) },
    { label: `PgBouncer, no reset (${options.pool} server connections; not deployed)`, url: withOptions(noReset.url) },
  ];
  const samples = new Map<string, Run[]>(variants.map((variant) => [variant.label, []]));
  for (const variant of variants) {
    log(`warm-up: ${variant.label}`);
    await runOnce(variant.url, authors, category, 1);
  }
  for (let round = 0; round < options.runs; round++) {
    for (let i = 0; i < variants.length; i++) {
      const variant = variants[(round + i) % variants.length]!;
      const run = await runOnce(variant.url, authors, category, options.seconds);
      samples.get(variant.label)!.push(run);
      log(`round ${round + 1}/${options.runs}: ${variant.label}: ${run.tps.toFixed(0)} tx/s (load ${loadavg()[0]!.toFixed(2)})`);
    }
  }
  const loadAfter = loadavg();
  const directTps = median(samples.get(variants[0]!.label)!.map((run) => run.tps));
  const rows = variants.map((variant) => {
    const runs = samples.get(variant.label)!;
    const tps = runs.map((run) => run.tps);
    return {
      variant: variant.label,
      medianTps: median(tps),
      minTps: Math.min(...tps),
      maxTps: Math.max(...tps),
      ofDirect: median(tps) / directTps,
      medianP50Ms: median(runs.map((run) => run.p50)),
      medianP95Ms: median(runs.map((run) => run.p95)),
      runs,
    };
  });
  const load = (numbers: number[]) => numbers.map((value) => value.toFixed(2)).join(' / ');
  const context = `${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Node.js ${process.versions.node}, PostgreSQL 18 (embedded), PgBouncer 1.18; ${options.clients} clients, ${options.runs} runs of ${options.seconds} s per variant, interleaved; load average (1/5/15 min) ${load(loadBefore)} at the start, ${load(loadAfter)} at the end`;
  const table = [
    context,
    '',
    '| variant | median tx/s | min–max tx/s | of direct | median p50 ms | median p95 ms |',
    '|---|---:|---:|---:|---:|---:|',
    ...rows.map(
      (row) =>
        `| ${row.variant} | ${row.medianTps.toFixed(0)} | ${row.minTps.toFixed(0)}–${row.maxTps.toFixed(0)} | ${(row.ofDirect * 100).toFixed(0)}% | ${row.medianP50Ms.toFixed(1)} | ${row.medianP95Ms.toFixed(1)} |`,
    ),
    '',
  ].join('\n');
  process.stdout.write(table);
  const directory = join(REPOSITORY_ROOT, 'bench', 'results');
  mkdirSync(directory, { recursive: true });
  const file = join(directory, `pooling-${new Date().toISOString().slice(0, 19).replaceAll(':', '')}.json`);
  writeFileSync(
    file,
    `${JSON.stringify({ date: new Date().toISOString(), context, options, workload: 'BEGIN; app_claim(); 20 newest own drafts; INSERT a draft; COMMIT', rows }, null, 2)}\n`,
  );
  log(`wrote ${file}`);
} catch (error) {
  process.stderr.write(`bench:pooling: ${(error as Error).message}\n`);
  process.exitCode = 1;
} finally {
  for (const pooler of poolers) await pooler.stop();
  await server?.stop();
}
