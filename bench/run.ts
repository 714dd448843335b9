/**
 * `npm run bench -- [--scale small|medium|large] [--reference] [--runs <n>]`: the platform's hot
 * queries and the bootstrap, measured on real engines (embedded PostgreSQL, ClickHouse through
 * chdb). Writes bench/results/<date>-<scale>.{md,json} (or reference.{md,json} with --reference).
 * Not part of `npm test`: timings are reported, never asserted. Exit codes:
 * `bootstrap/command-line.ts`.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, platform, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { defineCommand, positiveInteger, UsageError } from '../bootstrap/command-line.ts';
import type { BenchReport } from './report.ts';
import { SCALES, type Scale } from './scale.ts';

const command = defineCommand({
  name: 'bench',
  synopsis: ['npm run bench -- [options]'],
  summary:
    "Measures the platform's hot queries and the bootstrap on real engines (embedded PostgreSQL, ClickHouse through chdb), with progress on stderr, and writes bench/results/<date>-<scale>.{md,json}.",
  options: {
    scale: { type: 'string', value: '<scale>', choices: SCALES, default: 'small', description: `how much data: ${SCALES.join(', ')}` },
    reference: { type: 'boolean', description: 'write bench/results/reference.{md,json}, the figures docs/benchmark.md quotes' },
    runs: { type: 'string', value: '<n>', default: '200', description: 'runs of each query' },
  },
  exitCodes: { ok: 'measured, and the report written', failed: 'a benchmark failed (an engine did not start, a query failed)' },
});

const { values } = command.parse();
const scale = values.scale as Scale;
let runs: number;
try {
  runs = positiveInteger(values.runs, '--runs');
} catch (error) {
  runs = command.fail(error instanceof UsageError ? error.message : String(error));
}

// Loaded once the arguments are read: the engines' packages take a while, --help does not.
const { startChdb } = await import('../bootstrap/embedded/clickhouse.ts');
const { startEmbeddedPostgres } = await import('../bootstrap/embedded/postgresql.ts');
const { REPOSITORY_ROOT } = await import('../bootstrap/paths.ts');
const { memoryBytes } = await import('../databases/engine.ts');
const { namespaceConfig, parseStackConfig } = await import('../stacks/config/index.ts');
const { readStackFile } = await import('../stacks/render/stack-file.ts');
const { runBootstrapBench } = await import('./bootstrap.ts');
const { runClickHouseBench } = await import('./clickhouse.ts');
const { runPostgresBench } = await import('./postgresql/index.ts');
const { markdown } = await import('./report.ts');

const started = performance.now();
const log = (line: string) => process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}\n`);

function devMemory(): BenchReport['devMemory'] {
  const config = parseStackConfig(namespaceConfig(readStackFile(REPOSITORY_ROOT, 'dev').config), 'allixios', 'dev');
  const engines = Object.fromEntries(config.engines.map((engine) => [engine.spec.name, engine.spec.resources.limits.memory]));
  return { engines, totalBytes: Object.values(engines).reduce((sum, limit) => sum + memoryBytes(limit), 0), targetBytes: 3e9 };
}

function renderSeconds(): number {
  const out = join(REPOSITORY_ROOT, 'bench', 'results', 'render');
  const begin = performance.now();
  execFileSync(process.execPath, ['--import', 'tsx', 'stacks/render/cli.ts', '--stack', 'prod', '--out', out], { cwd: REPOSITORY_ROOT, stdio: 'ignore' });
  return (performance.now() - begin) / 1000;
}

function commit(): string | undefined {
  try {
    return execFileSync('git', ['describe', '--always', '--dirty'], { cwd: REPOSITORY_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined; // Not a git checkout, or no git: the report goes without.
  }
}

const measuredCommit = commit();
const report: BenchReport = {
  date: new Date().toISOString(),
  ...(measuredCommit ? { commit: measuredCommit } : {}),
  scale,
  machine: { cores: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.versions.node, os: `${platform()} ${release()}` },
  versions: {},
  durationSeconds: 0,
  loads: [],
  queries: [],
};

const postgres = await startEmbeddedPostgres();
const chdb = startChdb('bench');
try {
  log(`scale ${scale}: PostgreSQL`);
  const pg = await runPostgresBench({ scale, runs, log, server: postgres });
  report.versions.postgresql = pg.version;
  report.loads.push(...pg.loads);
  report.queries.push(...pg.queries);
  const floor = pg.transactionFloor;
  report.queryContext = [
    `PostgreSQL round-trip floor: SELECT 1 p50 ${floor.statement.p50.toFixed(2)} / p95 ${floor.statement.p95.toFixed(2)} ms; as the platform's transaction p50 ${floor.whole.p50.toFixed(2)} / p95 ${floor.whole.p95.toFixed(2)} ms.`,
    `PostgreSQL settings while measuring: ${Object.entries(pg.settings)
      .map(([name, value]) => `${name} ${value}`)
      .join(', ')}.`,
  ];

  log('ClickHouse');
  const ch = await runClickHouseBench({ scale, runs, log, client: chdb.client });
  report.versions.clickhouse = ch.version;
  report.loads.push(...ch.loads);
  report.queries.push(...ch.queries);

  log('bootstrap');
  report.bootstrap = await runBootstrapBench({ postgres, clickhouse: chdb.client, log });
} finally {
  await chdb.close();
  await postgres.stop();
}
log('render and dev memory');
report.render = { stack: 'prod', seconds: renderSeconds(), targetSeconds: 2 };
report.devMemory = devMemory();
report.durationSeconds = (performance.now() - started) / 1000;

const directory = join(REPOSITORY_ROOT, 'bench', 'results');
mkdirSync(directory, { recursive: true });
const base = values.reference ? 'reference' : `${report.date.slice(0, 10)}-${scale}`;
writeFileSync(join(directory, `${base}.json`), `${JSON.stringify(report, null, 2)}\n`);
writeFileSync(join(directory, `${base}.md`), markdown(report));
process.stdout.write(markdown(report));
log(`wrote bench/results/${base}.md and .json`);
