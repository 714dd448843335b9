/**
 * The plans of the benchmark's PostgreSQL queries (bench/postgresql/) on the small data set:
 * each query the platform issues, run as allixios_app under row-level security, reads the
 * index the design gives it and never scans articles whole. A schema change that loses an
 * index, or a policy that keeps one out, fails here. Timings are never asserted: five runs
 * are taken only because every report carries them; `npm run bench` measures.
 *
 * The small scale (5,000 articles) is enough for the planner to choose every index on its
 * own: no enable_seqscan = off, the plans are those the platform would get.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { checkPlan, POSTGRES_QUERIES, runPostgresBench, type PostgresBenchResult } from '../bench/postgresql/index.ts';
import type { QueryReport } from '../bench/stats.ts';

const INDEX_SCAN = `Index Scan using articles_slug_key on articles  (cost=0.94..3.17 rows=1 width=898)
  Index Cond: (slug = 'a-slug'::text)`;
const PARALLEL_SEQ_SCAN = `Gather  (cost=1000.00..9000.00 rows=1 width=898)
  ->  Parallel Seq Scan on articles  (cost=0.00..8000.00 rows=1 width=898)
        Filter: (slug = 'a-slug'::text)`;

describe('checkPlan', () => {
  it('accepts a plan that reads the expected index', () => {
    // Given an index scan of the slug index / When checked for that index
    const checks = checkPlan(INDEX_SCAN, ['articles_slug_key']);
    // Then both expectations hold
    expect(checks).toEqual([
      { expectation: 'uses articles_slug_key', ok: true },
      { expectation: 'no sequential scan of articles', ok: true },
    ]);
  });

  it('flags a (parallel) sequential scan of articles and the missing index', () => {
    // Given a parallel sequential scan / When checked for the slug index
    const checks = checkPlan(PARALLEL_SEQ_SCAN, ['articles_slug_key']);
    // Then both expectations fail
    expect(checks.map((check) => check.ok)).toEqual([false, false]);
  });

  const STATS_PLAN = `Append  (cost=0.42..16.90 rows=4 width=32)
  ->  Index Scan using daily_article_stats_y2025m12_pkey on daily_article_stats_y2025m12 s_1  (cost=0.42..8.44 rows=2 width=32)
        Index Cond: ((article_id = a.id) AND (day >= '2025-12-02'::date) AND (day < '2026-01-01'::date))`;

  it('accepts a plan of a partitioned table that reads only the expected partitions', () => {
    // Given a plan that reads the December partition alone / When checked for it
    const checks = checkPlan(STATS_PLAN, [], { table: 'daily_article_stats', scanned: ['daily_article_stats_y2025m12'] });
    // Then the pruning expectation holds
    expect(checks.at(-1)).toEqual({ expectation: 'reads only daily_article_stats_y2025m12 of daily_article_stats (partition pruning)', ok: true });
  });

  it('flags a plan that reads another partition too: DEFAULT, or a month outside the period', () => {
    // Given the plan with the DEFAULT partition, or November, read besides December
    const extra = (partition: string) => `${STATS_PLAN}\n  ->  Seq Scan on ${partition} s_2  (cost=0.00..1.01 rows=1 width=32)`;
    const expected = { table: 'daily_article_stats', scanned: ['daily_article_stats_y2025m12'] };
    // When checked / Then pruning is reported missing
    expect(checkPlan(extra('daily_article_stats_default'), [], expected).at(-1)!.ok).toBe(false);
    expect(checkPlan(extra('daily_article_stats_y2025m11'), [], expected).at(-1)!.ok).toBe(false);
    // And so is a plan that does not read the expected partition at all
    expect(checkPlan(STATS_PLAN.replaceAll('y2025m12', 'y2025m11'), [], expected).at(-1)!.ok).toBe(false);
  });

  it('does not take another index with the same prefix for the expected one', () => {
    // Given a scan of articles_slug_key_old / When checked for articles_slug_key
    const checks = checkPlan(INDEX_SCAN.replace('articles_slug_key', 'articles_slug_key_old'), ['articles_slug_key']);
    // Then the index expectation fails
    expect(checks[0]).toEqual({ expectation: 'uses articles_slug_key', ok: false });
  });
});

describe('benchmark query plans on the small data set, as the application', () => {
  let result: PostgresBenchResult;
  const report = (name: string): QueryReport => {
    const found = result.queries.find((query) => query.name === name);
    if (!found) throw new Error(`the benchmark reported no query named "${name}"; it reported: ${result.queries.map((query) => query.name).join(', ')}`);
    return found;
  };
  const failedChecks = (reports: QueryReport[]) => reports.flatMap((query) => query.planChecks.filter((check) => !check.ok).map((check) => `${query.name}: ${check.expectation}`));

  beforeAll(async () => {
    // No baseline: it only adds timings without indexes, which this test does not look at.
    result = await runPostgresBench({ scale: 'small', runs: 5, warmup: 1, baseline: false });
  }, 120_000);

  it("measures and explains every query of the issue, each with its plan's expectations", () => {
    // Given the small benchmark run / Then every query is there, with a plan and checks on it
    for (const name of Object.values(POSTGRES_QUERIES)) {
      const query = report(name);
      expect(query.plan, name).toMatch(/Execution Time/);
      expect(query.planChecks.length, name).toBeGreaterThanOrEqual(2);
    }
  });

  it('every query, the full-text search included, reads its index and never scans articles whole', () => {
    // Given the listing, slug, drafts, tag, search and statistics queries as the application issues them
    // Then no plan expectation fails
    expect(failedChecks(result.queries)).toEqual([]);
  });

  it("the author's statistics report reads only the month partition of its period (partition pruning)", () => {
    // Given the report over the last 30 days of the statistics (2025-12-02 up to 2026-01-01)
    const stats = report(POSTGRES_QUERIES.stats);
    // Then its plan reads December's partition through its key, and no other partition, DEFAULT included
    expect(stats.plan).toMatch(/Index (?:Only )?Scan using daily_article_stats_y2025m12_pkey on daily_article_stats_y2025m12\b/);
    expect(new Set([...stats.plan.matchAll(/\bon (daily_article_stats\w*)/g)].map((match) => match[1]))).toEqual(new Set(['daily_article_stats_y2025m12']));
    expect(stats.planChecks).toContainEqual({ expectation: 'reads only daily_article_stats_y2025m12 of daily_article_stats (partition pruning)', ok: true });
  });

  it("explains the full-text search as search_articles() runs it: as its owner, with the application's claim", () => {
    // Given the search, a SECURITY DEFINER function so that @@ (not LEAKPROOF) can use the GIN index
    const search = report(POSTGRES_QUERIES.search);
    // Then the plan shown is the body run with the owner's rights, filtered by article_visible()
    expect(search.plan).toMatch(/^-- the statement inside search_articles\(\), run as allixios_owner \(SECURITY DEFINER\)/);
    // Everyone's matches come from the index of published articles only (indexes/V0020)
    expect(search.plan).toMatch(/Bitmap Index Scan on articles_published_search_idx/);
  });
});
