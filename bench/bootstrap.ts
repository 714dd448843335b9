/**
 * The bootstrap's own cost: a fresh apply against the same SQL sent raw (no ledger, no lock: the
 * physical floor), a no-op run for PostgreSQL + ClickHouse + Redis measured in-process with the
 * connections apart, and how the no-op grows with 1,000 extra migrations in the history.
 */
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import pg from 'pg';
import { clickhouseEngine } from '../bootstrap/adapters/clickhouse.ts';
import { postgresqlEngine } from '../bootstrap/adapters/postgresql.ts';
import type { Asset } from '../bootstrap/assets.ts';
import type { EmbeddedPostgresServer } from '../bootstrap/embedded/postgresql.ts';
import { startEmbeddedRedis } from '../bootstrap/embedded/redis.ts';
import { runBootstrap, type BootstrapOptions, type BootstrapReport } from '../bootstrap/runner.ts';
import { CLICKHOUSE, POSTGRESQL, splitStatements } from '../bootstrap/sql.ts';
import type { EngineName } from '../databases/engine.ts';
import { toError } from '../bootstrap/errors.ts';
import { summarise, type Timing } from './stats.ts';

export interface BootstrapBenchReport {
  /** Median of `repeats` fresh applies, and of as many raw applies of the same statements. */
  freshApply: Partial<Record<EngineName, { runnerMs: number; rawMs: number; overhead: number; repeats: number }>>;
  /** A run with nothing to do, in-process, connections excluded (and reported apart). */
  noop: { engines: EngineName[]; inProcess: Timing; connections: Timing };
  /**
   * The same no-op with 1,000 synthetic migrations added to PostgreSQL's history: `ratio` compares
   * the whole no-op (the target), the PostgreSQL-only figures show where the growth is.
   */
  noopWithHistory: {
    extraMigrations: number;
    noop: Timing;
    noopWithHistory: Timing;
    ratio: number;
    postgresqlNoop: Timing;
    postgresqlNoopWithHistory: Timing;
  };
  notes: string[];
}

const TIMEOUTS = { readyTimeoutMs: 30_000, lockTimeoutMs: 30_000 };
const median = (values: number[]) => summarise(values).p50;

async function freshPostgresDatabase(server: EmbeddedPostgresServer, name: string): Promise<string> {
  const admin = new pg.Client({ connectionString: server.url('postgres', 'postgres') });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name}`);
  await admin.query(`CREATE DATABASE ${name} OWNER allixios_owner`);
  await admin.end();
  return server.url('allixios_owner', name);
}

/** The physical floor: every statement of every asset sent in order, as `psql -f` would. */
async function rawPostgres(url: string, assets: readonly Asset[]): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const started = performance.now();
  for (const asset of assets) for (const statement of splitStatements(asset.content, POSTGRESQL)) await client.query(statement.text);
  const elapsed = performance.now() - started;
  await client.end();
  return elapsed;
}

async function rawClickHouse(client: ClickHouseClient, assets: readonly Asset[]): Promise<number> {
  const started = performance.now();
  for (const asset of assets) for (const statement of splitStatements(asset.content, CLICKHOUSE)) await client.command({ query: statement.text });
  return performance.now() - started;
}

async function resetClickHouse(client: ClickHouseClient): Promise<void> {
  for (const database of ['allixios', 'allixios_bootstrap']) await client.command({ query: `DROP DATABASE IF EXISTS ${database} SYNC` });
}

/** A one-engine run's time without its connection. */
function inProcessMs(report: BootstrapReport): number {
  const engine = report.engines[0]!;
  return engine.durationMs - (engine.connectMs ?? 0);
}

/** In-process time of a run with its connection time apart. */
function split(report: BootstrapReport, totalMs: number): { inProcess: number; connections: number } {
  const connections = report.engines.reduce((sum, engine) => sum + (engine.connectMs ?? 0), 0);
  return { inProcess: totalMs - connections, connections };
}

async function timedRun(options: BootstrapOptions): Promise<{ report: BootstrapReport; totalMs: number }> {
  const started = performance.now();
  const report = await runBootstrap(options);
  const totalMs = performance.now() - started;
  if (!report.ok)
    throw new Error(
      `bootstrap failed during the benchmark: ${report.engines
        .map((engine) => engine.error)
        .filter(Boolean)
        .join('; ')}`,
    );
  return { report, totalMs };
}

export async function runBootstrapBench(options: {
  postgres: EmbeddedPostgresServer;
  clickhouse: ClickHouseClient;
  repeats?: number;
  noopRuns?: number;
  log?: (line: string) => void;
}): Promise<BootstrapBenchReport> {
  const log = options.log ?? (() => undefined);
  const repeats = options.repeats ?? 5;
  const noopRuns = options.noopRuns ?? 30;
  const notes: string[] = [];
  const freshApply: BootstrapBenchReport['freshApply'] = {};

  // PostgreSQL: fresh databases, alternating runner and raw so neither gets a warmer cache.
  const pgAssets: Asset[] = postgresqlEngine.desired({});
  const runner: number[] = [];
  const raw: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const viaRunner = await freshPostgresDatabase(options.postgres, `bench_runner_${i}`);
    runner.push(inProcessMs((await timedRun({ mode: 'apply', only: ['postgresql'], env: { DATABASE_URL: viaRunner }, ...TIMEOUTS })).report));
    const viaRaw = await freshPostgresDatabase(options.postgres, `bench_raw_${i}`);
    raw.push(await rawPostgres(viaRaw, pgAssets));
  }
  freshApply.postgresql = { runnerMs: median(runner), rawMs: median(raw), overhead: median(runner) / median(raw), repeats };
  log(`bootstrap: PostgreSQL fresh apply ${median(runner).toFixed(0)} ms via the runner, ${median(raw).toFixed(0)} ms raw`);
  notes.push("Fresh apply: both sides exclude connecting; the runner's time includes the advisory lock, reading and writing the ledger, and one transaction per migration.");

  // ClickHouse (chdb): the same, dropping the databases between runs.
  const chAssets: Asset[] = clickhouseEngine.desired({});
  const chRunner: number[] = [];
  const chRaw: number[] = [];
  const chOptions = { only: ['clickhouse' as const], env: {}, clients: { clickhouse: options.clickhouse }, ...TIMEOUTS };
  for (let i = 0; i < repeats; i++) {
    await resetClickHouse(options.clickhouse);
    chRunner.push(inProcessMs((await timedRun({ mode: 'apply', ...chOptions })).report));
    await resetClickHouse(options.clickhouse);
    chRaw.push(await rawClickHouse(options.clickhouse, chAssets));
  }
  freshApply.clickhouse = { runnerMs: median(chRunner), rawMs: median(chRaw), overhead: median(chRunner) / median(chRaw), repeats };
  notes.push(
    'ClickHouse runner against raw: the runner takes its lease (a claim, a 200 ms settle so that two concurrent claims see each other, a release) and records a ledger row after each statement, so that a run stopped half-way resumes at the failing statement (ClickHouse DDL is not transactional). Both are deliberate, paid once per fresh database, and make the ratio several times 1.15x on a schema this small.',
  );
  await resetClickHouse(options.clickhouse);
  await timedRun({ mode: 'apply', ...chOptions });

  // No-op: PostgreSQL + ClickHouse + Redis, everything applied already.
  const pgUrl = await freshPostgresDatabase(options.postgres, 'bench_noop');
  await timedRun({ mode: 'apply', only: ['postgresql'], env: { DATABASE_URL: pgUrl }, ...TIMEOUTS });
  const redis = await startEmbeddedRedis().catch((error: unknown) => {
    notes.push(`Redis left out of the no-op: ${toError(error).message}`);
    return undefined;
  });
  const engines: EngineName[] = ['postgresql', 'clickhouse', ...(redis ? (['redis'] as const) : [])];
  const env = { DATABASE_URL: pgUrl, ...(redis ? { REDIS_URL: redis.url('allixios_admin') } : {}) };
  // The same PostgreSQL with 1,000 extra migrations in its history.
  const extra = 1000;
  const directory = mkdtempSync(join(tmpdir(), 'allixios-bench-history-'));
  cpSync(postgresqlEngine.directory, directory, { recursive: true });
  const highest = Math.max(...pgAssets.filter((asset) => asset.kind === 'versioned').map((asset) => asset.version!));
  for (let i = 1; i <= extra; i++) {
    writeFileSync(join(directory, 'migrations', `V${String(highest + i).padStart(4, '0')}__synthetic_${i}.sql`), `-- Synthetic history for the benchmark.\nSELECT ${i};\n`);
  }
  const historyUrl = await freshPostgresDatabase(options.postgres, 'bench_history');
  await timedRun({ mode: 'apply', only: ['postgresql'], env: { DATABASE_URL: historyUrl }, assetDirectories: { postgresql: directory }, ...TIMEOUTS });

  const all = { mode: 'apply' as const, only: engines, clients: { clickhouse: options.clickhouse }, ...TIMEOUTS };
  const runs = {
    noop: { ...all, env },
    history: { ...all, env: { ...env, DATABASE_URL: historyUrl }, assetDirectories: { postgresql: directory } },
  };
  const samples = { inProcess: [] as number[], connections: [] as number[], history: [] as number[], pg: [] as number[], pgHistory: [] as number[] };
  const postgresMs = (report: BootstrapReport) => {
    const engine = report.engines.find((candidate) => candidate.engine === 'postgresql')!;
    return engine.durationMs - (engine.connectMs ?? 0);
  };
  try {
    for (let i = 0; i < noopRuns + 3; i++) {
      // Alternating, so both see the same machine state.
      const plain = await timedRun(runs.noop);
      const history = await timedRun(runs.history);
      for (const { report } of [plain, history]) {
        if (report.engines.some((engine) => engine.changed.length > 0)) throw new Error('the no-op run changed something');
      }
      if (i < 3) continue; // warm-up
      const parts = split(plain.report, plain.totalMs);
      samples.inProcess.push(parts.inProcess);
      samples.connections.push(parts.connections);
      samples.history.push(split(history.report, history.totalMs).inProcess);
      samples.pg.push(postgresMs(plain.report));
      samples.pgHistory.push(postgresMs(history.report));
    }
  } finally {
    await redis?.stop();
  }
  log(
    `bootstrap: no-op ${median(samples.inProcess).toFixed(1)} ms in-process, ${median(samples.connections).toFixed(1)} ms connecting, ${median(samples.history).toFixed(1)} ms with ${extra} extra migrations`,
  );
  const perFileUs = ((median(samples.pgHistory) - median(samples.pg)) / extra) * 1000;
  notes.push(
    `History: with ${extra} extra migrations the PostgreSQL no-op goes from ${median(samples.pg).toFixed(1)} to ${median(samples.pgHistory).toFixed(1)} ms, ` +
      `${perFileUs.toFixed(0)} µs per migration, linear. Every run reads and checksums every asset file, so that an applied migration edited afterwards is ` +
      `refused; that reading is the growth (about 10 µs of system calls per file on this machine). A history that long is squashed into a baseline migration; ` +
      `skipping the check would not be the fix.`,
  );

  return {
    freshApply,
    noop: { engines, inProcess: summarise(samples.inProcess), connections: summarise(samples.connections) },
    noopWithHistory: {
      extraMigrations: extra,
      noop: summarise(samples.inProcess),
      noopWithHistory: summarise(samples.history),
      ratio: median(samples.history) / median(samples.inProcess),
      postgresqlNoop: summarise(samples.pg),
      postgresqlNoopWithHistory: summarise(samples.pgHistory),
    },
    notes,
  };
}
