/** The benchmark's output: one Markdown table per part, and the whole run as JSON. */
import type { BootstrapBenchReport } from './bootstrap.ts';
import type { LoadReport, QueryReport, Timing } from './stats.ts';

export interface BenchReport {
  date: string;
  /** The commit measured (`git describe --always --dirty`), when the run is in a git checkout. */
  commit?: string;
  scale: string;
  machine: { cores: number; memoryGiB: number; node: string; os: string };
  versions: { postgresql?: string; clickhouse?: string };
  durationSeconds: number;
  loads: LoadReport[];
  queries: QueryReport[];
  /** What the query figures were taken with (server settings, round-trip floors), printed under them. */
  queryContext?: string[];
  bootstrap?: BootstrapBenchReport;
  render?: { stack: string; seconds: number; targetSeconds: number };
  devMemory?: { engines: Record<string, string>; totalBytes: number; targetBytes: number };
}

const ms = (value: number | undefined) => (value === undefined || Number.isNaN(value) ? '–' : value < 10 ? value.toFixed(2) : value.toFixed(1));
const check = (ok: boolean) => (ok ? 'yes' : '**no**');

function timingCells(timing: Timing | undefined): string {
  return timing ? `${ms(timing.p50)} / ${ms(timing.p95)} / ${ms(timing.p99)}` : '–';
}

export function markdown(report: BenchReport): string {
  const lines: string[] = [];
  lines.push(`# Benchmark, scale ${report.scale}`, '');
  lines.push(
    `${report.date}${report.commit ? `, commit ${report.commit}` : ''}; ${report.machine.cores} cores, ${report.machine.memoryGiB} GiB; ${report.machine.os}; Node.js ${report.machine.node}; ` +
      `PostgreSQL ${report.versions.postgresql ?? '–'}; ClickHouse ${report.versions.clickhouse ?? '–'} (chdb); ${report.durationSeconds.toFixed(0)} s in all.`,
    '',
  );
  lines.push('## Load', '', '| engine | table | rows | seconds | rows/s |', '|---|---|---:|---:|---:|');
  for (const load of report.loads)
    lines.push(`| ${load.engine} | ${load.table} | ${load.rows.toLocaleString('en')} | ${load.seconds.toFixed(1)} | ${Math.round(load.rowsPerSecond).toLocaleString('en')} |`);
  lines.push('', '## Queries (milliseconds: p50 / p95 / p99)', '');
  lines.push(
    "Timing is the query's own round trip, what targets and speed-ups are judged on; for PostgreSQL it runs inside the platform's transaction (BEGIN, app_claim(), the query, COMMIT), whose whole time is the next column.",
    '',
  );
  lines.push('| engine | query | runs | timing | whole transaction | target p95 | baseline | speed-up | plan as expected |', '|---|---|---:|---|---|---:|---|---:|---|');
  for (const query of report.queries) {
    const target = query.target?.p95Ms !== undefined ? `${query.target.p95Ms}${query.timing.p95 <= query.target.p95Ms ? '' : ' **missed**'}` : '–';
    const speedup = query.speedup !== undefined ? `${query.speedup.toFixed(0)}x${query.speedup >= (query.target?.speedup ?? 50) ? '' : ' **<50x**'}` : '–';
    lines.push(
      `| ${query.engine} | ${query.name} | ${query.timing.runs} | ${timingCells(query.timing)} | ${timingCells(query.transaction)} | ${target} | ${timingCells(query.baseline)} (${query.baseline?.runs ?? 0} runs) | ${speedup} | ${check(query.planChecks.every((c) => c.ok))} |`,
    );
  }
  if (report.queryContext?.length) lines.push('', ...report.queryContext.map((line) => `- ${line}`));
  const notes = report.queries.filter((query) => query.note);
  if (notes.length) {
    lines.push('', 'Notes:', '');
    for (const query of notes) lines.push(`- **${query.engine} ${query.name}**: ${query.note}`);
  }
  const failed = report.queries.flatMap((query) => query.planChecks.filter((c) => !c.ok).map((c) => `${query.engine} ${query.name}: ${c.expectation}`));
  if (failed.length) lines.push('', 'Plan checks that failed:', '', ...failed.map((line) => `- ${line}`));
  if (report.bootstrap) {
    const b = report.bootstrap;
    lines.push('', '## Bootstrap', '', '| measure | value | target |', '|---|---|---|');
    for (const [engine, fresh] of Object.entries(b.freshApply)) {
      lines.push(
        `| ${engine} fresh apply: runner / raw | ${ms(fresh!.runnerMs)} / ${ms(fresh!.rawMs)} ms = ${fresh!.overhead.toFixed(2)}x (median of ${fresh!.repeats}) | ≤ 1.15x |`,
      );
    }
    lines.push(
      `| no-op, ${b.noop.engines.join(' + ')}, in-process p50 / p95 | ${ms(b.noop.inProcess.p50)} / ${ms(b.noop.inProcess.p95)} ms (${b.noop.inProcess.runs} runs) | ≤ 150 ms |`,
    );
    lines.push(`| no-op connections, p50 | ${ms(b.noop.connections.p50)} ms | reported apart |`);
    const h = b.noopWithHistory;
    lines.push(
      `| no-op with ${h.extraMigrations} extra PostgreSQL migrations / without, p50 | ${ms(h.noopWithHistory.p50)} / ${ms(h.noop.p50)} ms = ${h.ratio.toFixed(2)}x | ≤ 2x |`,
    );
    lines.push(`| of which PostgreSQL alone, with / without, p50 | ${ms(h.postgresqlNoopWithHistory.p50)} / ${ms(h.postgresqlNoop.p50)} ms | where the growth is |`);
    if (b.notes.length) lines.push('', ...b.notes.map((note) => `- ${note}`));
  }
  if (report.render || report.devMemory) lines.push('', '## Provisioning', '', '| measure | value | target |', '|---|---|---|');
  if (report.render)
    lines.push(`| render of the ${report.render.stack} stack (a process: tsx, program, mocks) | ${report.render.seconds.toFixed(2)} s | ≤ ${report.render.targetSeconds} s |`);
  if (report.devMemory) {
    const gb = (bytes: number) => (bytes / 1e9).toFixed(2);
    lines.push(
      `| dev memory limits (${Object.entries(report.devMemory.engines)
        .map(([engine, limit]) => `${engine} ${limit}`)
        .join(', ')}) | ${gb(report.devMemory.totalBytes)} GB | ≤ ${gb(report.devMemory.targetBytes)} GB |`,
    );
  }
  return `${lines.join('\n')}\n`;
}
