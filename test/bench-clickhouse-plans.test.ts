/**
 * The ClickHouse benchmark (bench/clickhouse.ts) at scale small, on chdb: the data loads, every
 * query's plan is the expected one (dashboards read their rollup and no raw table, partition and
 * primary key used, the baseline answers the same question), and a target the design cannot
 * meet is explained. Timings are measured with a few runs only and never asserted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkPlan, runClickHouseBench, type ClickHouseBenchReport, type ClickHouseQueryReport } from '../bench/clickhouse.ts';
import { SIZES } from '../bench/scale.ts';
import { startChdb, type ChdbEngine } from './support/clickhouse.ts';

let engine: ChdbEngine;
let report: ClickHouseBenchReport;

beforeAll(async () => {
  // One data directory for this file: libchdb binds one per process (ENGINES.md).
  engine = startChdb('bench-clickhouse-plans');
  report = await runClickHouseBench({ scale: 'small', runs: 5, warmup: 1, client: engine.client });
});

afterAll(async () => {
  await engine?.close();
});

/** Each dashboard question and what its plan reads: a rollup, or a rollup's projection. */
const ROLLUP_QUERIES: ReadonlyArray<[name: string, rollup: string]> = [
  ['views per day for one article over 30 days', 'by_article'],
  ['top 10 articles by views in the last 7 days', 'allixios.article_views_daily_agg'],
  ['p95 response time per endpoint per hour for a day', 'allixios.endpoint_latency_hourly_agg'],
  ['revenue per source per day for a month', 'allixios.revenue_daily_agg'],
  ['unique visitors per category for a week', 'allixios.category_visitors_daily_agg'],
];

function query(name: string): ClickHouseQueryReport {
  const found = report.queries.find((candidate) => candidate.name === name);
  if (!found) throw new Error(`no query "${name}" in the report (${report.queries.map((candidate) => candidate.name).join(', ')})`);
  return found;
}

/** The tables an EXPLAIN plan reads, read here independently of the bench's own checks. */
function tablesRead(plan: string): string[] {
  return [...new Set([...plan.matchAll(/ReadFromMergeTree \((\S+)\)/g)].map((match) => match[1]!))].sort();
}

describe('the ClickHouse benchmark at scale small', () => {
  it('loads the generated rows of every raw table and reports a throughput for each', () => {
    // Given the bench run at scale small; when its load reports are read
    const loads = report.loads.map((load) => ({ engine: load.engine, table: load.table, rows: load.rows, measured: load.seconds > 0 && load.rowsPerSecond > 0 }));
    // Then events, requests (a tenth) and revenue events (a hundredth) were loaded, each with a throughput
    const events = SIZES.small.events;
    expect(loads).toEqual([
      { engine: 'clickhouse', table: 'user_events', rows: events, measured: true },
      { engine: 'clickhouse', table: 'performance_metrics', rows: events / 10, measured: true },
      { engine: 'clickhouse', table: 'revenue_events', rows: events / 100, measured: true },
    ]);
    expect(report.version).toMatch(/^\d+\.\d+/);
  });

  it("measures the issue's five questions, each against a baseline, with a plan", () => {
    // Given the report; when its queries are listed
    // Then there is one per question, each with a plan, a baseline and a speed-up
    expect(report.queries.map((candidate) => candidate.name)).toEqual(ROLLUP_QUERIES.map(([name]) => name));
    for (const candidate of report.queries) {
      expect(candidate.plan, candidate.name).toMatch(/ReadFromMergeTree/);
      expect(candidate.baselinePlan, candidate.name).toMatch(/ReadFromMergeTree/);
      expect(candidate.baseline?.runs, candidate.name).toBeGreaterThan(0);
      expect(candidate.speedup, candidate.name).toBeGreaterThan(0);
    }
  });

  it.each(ROLLUP_QUERIES.map(([name]) => name))('%s: every plan check holds', (name) => {
    // Given the query's report; when its plan checks are read
    const { planChecks } = query(name);
    // Then there are checks on the dashboard query, on the baseline and on their answers, and none failed
    // (a projection's plan shows no partition index, so its query has one check less)
    expect(planChecks.length).toBeGreaterThanOrEqual(8);
    expect(planChecks.filter((check) => !check.ok).map((check) => check.expectation)).toEqual([]);
  });

  it.each(ROLLUP_QUERIES)('%s reads %s and no raw table, its baseline the raw table', (name, rollup) => {
    // Given the saved plans of the dashboard query and of its baseline
    const { plan, baselinePlan, rowsRead, baselineRowsRead } = query(name);
    // Then the dashboard reads the rollup only, and the baseline a raw table only
    expect(tablesRead(plan)).toEqual([rollup]);
    expect(tablesRead(baselinePlan)).toHaveLength(1);
    expect(tablesRead(baselinePlan)[0]).toMatch(/^allixios\.(user_events|performance_metrics|revenue_events)$/);
    // And what each read was recorded
    expect(rowsRead).toBeGreaterThan(0);
    expect(baselineRowsRead).toBeGreaterThan(0);
  });

  it('the plan checks fail a plan that reads the raw events where a rollup is expected', () => {
    // Given the baseline's plan of the article query, which reads user_events
    const article = query(ROLLUP_QUERIES[0]![0]);
    // When it is checked against what the dashboard query's plan must show
    const checks = checkPlan(
      article.baselinePlan,
      { reads: 'allixios.article_views_daily_agg', avoids: ['allixios.user_events'], partitionKey: 'toYYYYMM(event_date)', keyColumns: ['event_date'] },
      article.baselineRowsRead,
      SIZES.small.events,
    );
    // Then the checks on the table read fail
    expect(checks.filter((check) => !check.ok).map((check) => check.expectation)).toEqual([
      'reads allixios.article_views_daily_agg',
      'reads no raw table (allixios.user_events)',
      expect.stringMatching(/^the primary key condition uses event_date/),
    ]);
  });

  it('every query that misses a target carries a note saying why', () => {
    // Given the report's queries; when those missing a target are picked (whatever the timings were)
    const missing = report.queries.filter((candidate) => candidate.timing.p95 > candidate.target!.p95Ms! || candidate.speedup! < candidate.target!.speedup!);
    // Then each has a note naming what was measured
    for (const candidate of missing) expect(candidate.note, candidate.name).toMatch(/\d[\d,]* (rollup |raw )?rows/);
  });

  it('refuses a database that already holds events: its figures would not be about its own data', async () => {
    // Given the engine loaded by the run above; when the bench is run on it again
    // Then it refuses before loading anything
    await expect(runClickHouseBench({ scale: 'small', runs: 1, warmup: 0, client: engine.client })).rejects.toThrow(/already holds [\d]+ raw rows/);
    const [count] = await (await engine.client.query({ query: 'SELECT toUInt32(count()) AS rows FROM allixios.user_events', format: 'JSONEachRow' })).json<{ rows: number }>();
    expect(count).toEqual({ rows: SIZES.small.events });
  });
});
