/**
 * `npm run bench -- --scale small|medium|large [--reference]`: the platform's hot queries and the
 * bootstrap, measured on real engines (embedded PostgreSQL, ClickHouse through chdb). Writes
 * bench/results/<date>-<scale>.{md,json} (or reference.{md,json} with --reference). Not part of
 * `npm test`: timings are reported, never asserted.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, platform, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startChdb } from '../bootstrap/embedded/clickhouse.ts';
import { startEmbeddedPostgres } from '../bootstrap/embedded/postgresql.ts';
import { REPOSITORY_ROOT } from '../bootstrap/runner.ts';
import { memoryBytes } from '../databases/engine.ts';
import { namespaceConfig, parseStackConfig } from '../stacks/config/index.ts';
import { readStackFile } from '../stacks/render/stack-file.ts';
import { runBootstrapBench } from './bootstrap.ts';
import { runClickHouseBench } from './clickhouse.ts';
import { runPostgresBench } from './postgresql/index.ts';
import { markdown, type BenchReport } from './report.ts';
import { SCALES, type Scale } from './scale.ts';

const { values } = parseArgs({ options: { scale: { type: 'string', default: 'small' }, reference: { type: 'boolean', default: false }, runs: { type: 'string' } } });
if (!(SCALES as readonly string[]).includes(values.scale!)) {
  process.stderr.write(`bench: --scale expects one of ${SCALES.join(', ')}, got "${values.scale}"\n`);
  process.exit(2);
}
const scale = values.scale as Scale;
const runs = values.runs ? Number(values.runs) : 200;
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
