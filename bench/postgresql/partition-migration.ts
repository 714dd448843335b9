/**
 * What the conversion of daily_article_stats to monthly partitions (migrations/V0021) costs on a
 * table with data: `npx tsx bench/postgresql/partition-migration.ts [--rows <n>]` starts an
 * embedded PostgreSQL 18, applies every asset before V0021, seeds statistics (a row per article
 * and day over 30 months), then applies V0021 with the bootstrap and reports how long it took
 * and that every month kept its rows and sums. The tests use its seeding and its partial asset
 * folder (test/postgresql-partitions.test.ts).
 */
import { cpSync, mkdtempSync, rmSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { postgresql } from '../../databases/postgresql/index.ts';

/** The migration that partitions daily_article_stats. */
export const PARTITIONING_MIGRATION = 'V0021__daily_article_stats_by_month.sql';

/**
 * A copy of the PostgreSQL assets without the versioned files from `firstLeftOut` on: the schema
 * as it was before them, for applying them later to a database with data. Removed by `remove`.
 */
export function assetsBefore(firstLeftOut: string): { directory: string; remove: () => void } {
  const directory = mkdtempSync(join(tmpdir(), 'allixios-assets-'));
  const cutoff = Number(/^V(\d+)__/.exec(firstLeftOut)?.[1]);
  if (!Number.isInteger(cutoff)) throw new Error(`${firstLeftOut} is not a versioned migration's file name`);
  for (const folder of ['schemas', 'indexes', 'migrations', 'functions']) {
    cpSync(join(postgresql.directory, folder), join(directory, folder), { recursive: true });
    for (const name of readdirSync(join(directory, folder))) {
      const version = Number(/^V(\d+)__/.exec(name)?.[1]);
      if (Number.isInteger(version) && version >= cutoff) rmSync(join(directory, folder, name));
    }
  }
  return { directory, remove: () => rmSync(directory, { recursive: true, force: true }) };
}

export interface SeededStatistics {
  articles: number;
  rows: number;
  authors: string[];
}

/**
 * Seeds authors, published articles and their daily statistics as the owner: `articles`
 * articles, each with a row per day for `daysPerArticle` days from its publication, the
 * publications spread over the 30 months before `until` (exclusive).
 */
export async function seedStatistics(owner: pg.ClientBase, options: { articles: number; daysPerArticle: number; until: string }): Promise<SeededStatistics> {
  const authors = (
    await owner.query<{ id: string }>(
      `INSERT INTO users (id, email, display_name, role)
       SELECT gen_random_uuid(), format('seed-author-%s-%s@example.com', n, gen_random_uuid()), format('Author %s', n), 'author'
         FROM generate_series(1, 20) n RETURNING id`,
    )
  ).rows.map((row) => row.id);
  const [{ id: category }] = (await owner.query<{ id: string }>(`INSERT INTO categories (slug, name) VALUES ('seed-' || gen_random_uuid(), 'Seeded') RETURNING id`)).rows as [
    { id: string },
  ];
  await owner.query(
    `INSERT INTO articles (title, slug, body, status, author_id, category_id, published_at)
     SELECT format('Seeded %s', n), format('seeded-%s-%s', n, gen_random_uuid()), 'A seeded body.', 'published',
            ($1::uuid[])[1 + n % array_length($1::uuid[], 1)], $2,
            $3::date - $4::int - ((n * 7919) % (900 - $4::int)) * interval '1 day'
       FROM generate_series(1, $5::int) n`,
    [authors, category, options.until, options.daysPerArticle, options.articles],
  );
  const { rowCount } = await owner.query(
    `INSERT INTO daily_article_stats (article_id, day, views, unique_visitors, comments)
     SELECT a.id, a.published_at::date + d, v.views, v.views / 2, v.views / 150
       FROM articles a
      CROSS JOIN generate_series(0, $1::int - 1) d
      CROSS JOIN LATERAL (SELECT (abs(hashtext(a.id::text || d)) % 5000)::bigint AS views) v
      WHERE a.category_id = $2`,
    [options.daysPerArticle, category],
  );
  return { articles: options.articles, rows: rowCount ?? 0, authors };
}

export interface MonthTotals {
  month: string;
  rows: number;
  views: string;
  visitors: string;
  comments: string;
}

/** Rows and sums of daily_article_stats per month: what the conversion must keep. */
export async function monthTotals(client: pg.ClientBase): Promise<MonthTotals[]> {
  return (
    await client.query<MonthTotals>(
      `SELECT to_char(date_trunc('month', day), 'YYYY-MM') AS month, count(*)::int AS rows,
              sum(views)::text AS views, sum(unique_visitors)::text AS visitors, sum(comments)::text AS comments
         FROM daily_article_stats GROUP BY 1 ORDER BY 1`,
    )
  ).rows;
}

async function main(): Promise<void> {
  const rowsArgument = process.argv.indexOf('--rows');
  const wanted = rowsArgument > 0 ? Number(process.argv[rowsArgument + 1]) : 1_500_000;
  if (!Number.isInteger(wanted) || wanted < 1000) throw new Error(`--rows must be a whole number of at least 1000, got ${process.argv[rowsArgument + 1]}`);
  const daysPerArticle = 75;
  const { startEmbeddedPostgres } = await import('../../bootstrap/embedded/postgresql.ts');
  const { applyAssets } = await import('../../bootstrap/apply.ts');
  const server = await startEmbeddedPostgres();
  const before = assetsBefore(PARTITIONING_MIGRATION);
  const owner = new pg.Client({ connectionString: server.url('allixios_owner') });
  try {
    const env = { DATABASE_URL: server.url('allixios_owner') };
    await applyAssets('postgresql', { env, assetDirectories: { postgresql: before.directory } });
    await owner.connect();
    const seedStarted = performance.now();
    const seeded = await seedStatistics(owner, { articles: Math.ceil(wanted / daysPerArticle), daysPerArticle, until: new Date().toISOString().slice(0, 10) });
    await owner.query('VACUUM (ANALYZE) daily_article_stats, articles');
    const size = (await owner.query<{ size: string }>(`SELECT pg_size_pretty(pg_total_relation_size('daily_article_stats')) AS size`)).rows[0]!.size;
    process.stderr.write(`seeded ${seeded.rows} rows (${size} with its key) in ${((performance.now() - seedStarted) / 1000).toFixed(1)} s\n`);
    const totalsBefore = await monthTotals(owner);

    const started = performance.now();
    const report = await applyAssets('postgresql', { env });
    const seconds = (performance.now() - started) / 1000;
    const applied = report.engines.flatMap((engine) => engine.changed);
    const migration = applied.find((entry) => JSON.stringify(entry.change).includes(PARTITIONING_MIGRATION));
    if (!migration) throw new Error(`the bootstrap did not apply ${PARTITIONING_MIGRATION}: ${JSON.stringify(applied.map((entry) => entry.change))}`);
    const totalsAfter = await monthTotals(owner);
    const kept = JSON.stringify(totalsAfter) === JSON.stringify(totalsBefore);
    const partitions = (await owner.query<{ count: number }>(`SELECT count(*)::int AS count FROM pg_inherits WHERE inhparent = 'daily_article_stats'::regclass`)).rows[0]!.count;
    const version = (await owner.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version;
    process.stdout.write(
      `PostgreSQL ${version}: ${PARTITIONING_MIGRATION} converted ${seeded.rows} rows (${size}, ${totalsBefore.length} months) into ${partitions} partitions in ${(migration.durationMs / 1000).toFixed(1)} s (the bootstrap run: ${seconds.toFixed(1)} s); every month's rows and sums kept: ${kept ? 'yes' : 'NO'}\n`,
    );
    if (!kept) process.exitCode = 1;
  } finally {
    await owner.end().catch(() => undefined);
    before.remove();
    await server.stop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
