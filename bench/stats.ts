/** Timing a query many times and summarising it; no timing is ever asserted in tests. */

export interface Timing {
  runs: number;
  p50: number;
  p95: number;
  p99: number;
  /** Milliseconds. */
  mean: number;
}

/** Nearest-rank percentile of sorted milliseconds. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function summarise(samples: readonly number[]): Timing {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    runs: sorted.length,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    mean: sorted.reduce((sum, value) => sum + value, 0) / Math.max(1, sorted.length),
  };
}

/**
 * Runs `query` `warmup` times unmeasured, then `runs` times measured; `parameters(i)` varies the
 * input per run (a different category, slug, author) so caches do not flatter the numbers.
 */
export async function measure<P>(runs: number, warmup: number, parameters: (i: number) => P, query: (p: P) => Promise<unknown>): Promise<Timing> {
  const timed = async (p: P): Promise<number> => {
    await query(p);
    return 0;
  };
  return (await measureStatement(runs, warmup, parameters, timed)).whole;
}

/**
 * measure() for a query that times its main statement itself (returned in milliseconds): the
 * whole call and the statement alone, summarised from the same runs.
 */
export async function measureStatement<P>(
  runs: number,
  warmup: number,
  parameters: (i: number) => P,
  query: (p: P) => Promise<number>,
): Promise<{ whole: Timing; statement: Timing }> {
  for (let i = 0; i < warmup; i++) await query(parameters(i));
  const whole: number[] = [];
  const statement: number[] = [];
  for (let i = 0; i < runs; i++) {
    const p = parameters(warmup + i);
    const started = performance.now();
    statement.push(await query(p));
    whole.push(performance.now() - started);
  }
  return { whole: summarise(whole), statement: summarise(statement) };
}

/** One benchmarked query: its timings, its baseline's, and whether its plan is the expected one. */
export interface QueryReport {
  engine: 'postgresql' | 'clickhouse';
  name: string;
  /** The query as the platform issues it. */
  sql: string;
  /** The query's own round trip (for PostgreSQL, inside the platform's transaction): what targets are judged on. */
  timing: Timing;
  /**
   * PostgreSQL: the platform's whole transaction around the query (BEGIN, app_claim() with the
   * claim, the query, COMMIT), what the application waits for, from the same runs.
   */
  transaction?: Timing;
  /** The same query without the design's index strategy (PostgreSQL) or on the raw events (ClickHouse). */
  baseline?: Timing;
  /** baseline p50 / timing p50. */
  speedup?: number;
  /** The plan, as the engine printed it (EXPLAIN (ANALYZE, BUFFERS) / EXPLAIN indexes = 1). */
  plan: string;
  /** What the plan must show (index used, no sequential scan of articles, rollup read), checked. */
  planChecks: Array<{ expectation: string; ok: boolean }>;
  /** Targets from the issue, reported, never asserted. */
  target?: { p95Ms?: number; speedup?: number };
  /** Why a target is missed and what would fix it, when it is. */
  note?: string;
}

export interface LoadReport {
  engine: 'postgresql' | 'clickhouse';
  table: string;
  rows: number;
  seconds: number;
  rowsPerSecond: number;
}
