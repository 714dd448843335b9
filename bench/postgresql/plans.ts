/**
 * The PostgreSQL benchmark's plans: each query explained as the platform runs it (EXPLAIN
 * ANALYZE under the application's claim, with the owner's rights inside a SECURITY DEFINER
 * function), the expectations every plan is checked against, and what the report reads from a
 * plan (the share ts_headline takes of the search).
 */
import pg from 'pg';
import type { QueryReport } from '../stats.ts';
import { asActor, ms, PAGE_SIZE, type Workload } from './queries.ts';

/** EXPLAIN (ANALYZE, BUFFERS) as the platform runs it: the application's claim, and the owner's rights inside a SECURITY DEFINER function. */
export async function explain(clients: { app: pg.Client; owner: pg.Client }, workload: Workload): Promise<string> {
  const draw = workload.draws[0]!;
  const sql = workload.explain?.sql ?? workload.sql;
  const values = workload.explain ? workload.explain.values(draw.values) : draw.values;
  const client = workload.explain?.asOwner ? clients.owner : clients.app;
  const { rows } = await asActor(client, draw.actor, () => client.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) ${sql}`, values));
  const plan = rows.map((row) => row['QUERY PLAN']).join('\n');
  if (!workload.explain) return plan;
  const rights = workload.explain.asOwner ? 'as allixios_owner (SECURITY DEFINER)' : 'as the application';
  return `-- the statement inside search_articles(), run ${rights} with the application's claim:\n${plan}`;
}

/**
 * The plan's expectations: each expected index appears as scanned, articles is never read whole,
 * and of a partitioned table only the expected partitions are read (partition pruning): every
 * relation the plan reads whose name starts with the table's and an underscore is one of them.
 */
export function checkPlan(plan: string, indexes: readonly string[], partitions?: Workload['partitions']): QueryReport['planChecks'] {
  const checks = [
    ...indexes.map((index) => ({ expectation: `uses ${index}`, ok: new RegExp(`\\b(?:using|on) ${index}\\b`).test(plan) })),
    { expectation: 'no sequential scan of articles', ok: !/\bSeq Scan on articles\b/.test(plan) },
  ];
  if (partitions) {
    const read = new Set([...plan.matchAll(new RegExp(`\\bon (${partitions.table}_\\w+)`, 'g'))].map((match) => match[1]!));
    const expected = new Set(partitions.scanned);
    checks.push({
      expectation: `reads only ${partitions.scanned.join(', ')} of ${partitions.table} (partition pruning)`,
      ok: read.size === expected.size && [...read].every((name) => expected.has(name)),
    });
  }
  return checks;
}

/** The time ts_headline took in a plan of search_articles()'s statement: the outer node minus the ranked page. */
export function headlineCost(plan: string): string | undefined {
  const total = /^Subquery Scan on r .*actual time=[\d.]+\.\.([\d.]+)/m.exec(plan)?.[1];
  const ranked = /^\s+->\s+Limit .*actual time=[\d.]+\.\.([\d.]+)/m.exec(plan)?.[1];
  if (!total || !ranked) return undefined;
  return `In the plan shown, finding and ranking the page took ${ms(Number(ranked))} ms and ts_headline over the ${PAGE_SIZE} results ${ms(Number(total) - Number(ranked))} ms more (it parses title, excerpt and body of each result again; headlines over the excerpt, or the body's first paragraphs, would cost a fraction).`;
}
