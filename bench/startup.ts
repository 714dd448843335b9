/**
 * `npm run bench:startup -- [--runs <n>] [--before <checkout>] [--status]`: the whole-process
 * start of the bootstrap CLI, `--dry-run --offline` (every engine planned, nothing contacted),
 * as TypeScript through tsx and as the JavaScript `npm run build` compiles (what the image runs).
 *
 * With `--before <checkout>` (a worktree of an earlier commit, with node_modules), the same
 * command from there too, with tsx's cache warm and cold (a fresh container starts cold). With
 * `--status`, also a PostgreSQL-only `--status` against an embedded server the bench brings up
 * to date first: a run that has nothing to do, with one driver to load.
 *
 * The variants run interleaved, one of each per round in a rotating order, after one unmeasured
 * run each, so that whatever else loads the machine weighs on all of them alike; the load
 * average is reported beside the figures. Timings are reported, never asserted.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { defineCommand, positiveInteger, UsageError } from '../bootstrap/command-line.ts';
import { REPOSITORY_ROOT } from '../bootstrap/paths.ts';
import { percentile } from './stats.ts';

const command = defineCommand({
  name: 'bench:startup',
  synopsis: ['npm run bench:startup -- [options]'],
  summary: "Measures the bootstrap CLI's whole-process start (--dry-run --offline), through tsx and compiled, interleaved, and prints median and spread.",
  options: {
    runs: { type: 'string', value: '<n>', default: '10', description: 'measured runs of each variant' },
    before: { type: 'string', value: '<checkout>', description: 'also measure the CLI of this checkout (an earlier commit, with node_modules), tsx cache warm and cold' },
    status: { type: 'boolean', description: 'also measure a PostgreSQL-only --status against an embedded server with nothing to do' },
  },
  exitCodes: { ok: 'measured', failed: 'a variant failed (its exit code and output are printed)' },
});

const { values } = command.parse();
let runs: number;
try {
  runs = positiveInteger(values.runs, '--runs');
} catch (error) {
  runs = command.fail(error instanceof UsageError ? error.message : String(error));
}

interface Variant {
  label: string;
  args: string[];
  cwd: string;
  env?: Record<string, string>;
  /** A fresh TMPDIR for every run: tsx's transpile cache starts empty, as in a new container. */
  coldCache?: boolean;
}

const scratch = mkdtempSync(join(tmpdir(), 'allixios-startup-'));
const log = (line: string) => process.stderr.write(`${line}\n`);

/** The compiled CLI, built the way the image builds it, into a folder beside the repository's node_modules. */
function build(): string {
  const out = join(scratch, 'dist');
  log(`building into ${out} (npm run build)`);
  const result = spawnSync(process.execPath, [join(REPOSITORY_ROOT, 'bootstrap/build.mjs'), '--out-dir', out], { cwd: REPOSITORY_ROOT, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`npm run build failed:\n${result.stdout}${result.stderr}`);
  symlinkSync(join(REPOSITORY_ROOT, 'node_modules'), join(out, 'node_modules'), 'dir');
  return out;
}

function timeOnce(variant: Variant): number {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', ...variant.env };
  if (variant.coldCache) env.TMPDIR = mkdtempSync(join(scratch, 'tmp-'));
  const started = performance.now();
  const result = spawnSync(process.execPath, variant.args, { cwd: variant.cwd, env, encoding: 'utf8' });
  const elapsed = performance.now() - started;
  if (variant.coldCache) rmSync(env.TMPDIR!, { recursive: true, force: true });
  if (result.status !== 0) throw new Error(`${variant.label}: exit ${result.status}\n${result.stdout}${result.stderr}`);
  return elapsed;
}

/** Each variant once unmeasured, then `runs` rounds, each running every variant once in a rotated order. */
function measure(variants: readonly Variant[]): Map<string, number[]> {
  const samples = new Map<string, number[]>(variants.map((variant) => [variant.label, []]));
  for (const variant of variants) timeOnce(variant);
  for (let round = 0; round < runs; round++) {
    for (let i = 0; i < variants.length; i++) {
      const variant = variants[(round + i) % variants.length]!;
      samples.get(variant.label)!.push(timeOnce(variant));
    }
    log(`round ${round + 1}/${runs} (load ${loadavg()[0]!.toFixed(2)})`);
  }
  return samples;
}

function table(title: string, samples: Map<string, number[]>): string {
  const seconds = (ms: number) => (ms / 1000).toFixed(2);
  const rows = [...samples].map(([label, values]) => {
    const sorted = [...values].sort((a, b) => a - b);
    return `| ${label} | ${seconds(percentile(sorted, 50))} | ${seconds(percentile(sorted, 25))}–${seconds(percentile(sorted, 75))} | ${seconds(sorted[0]!)}–${seconds(sorted.at(-1)!)} | ${sorted.length} |`;
  });
  return [`### ${title}`, '', '| variant | median s | p25–p75 s | min–max s | runs |', '|---|---|---|---|---|', ...rows, ''].join('\n');
}

const offlineArgs = ['--dry-run', '--offline'];
const before = values.before ? resolve(values.before) : undefined;
const tsxCli = (root: string, args: string[]) => ['--import', 'tsx', join(root, 'bootstrap/cli.ts'), ...args];

try {
  const out = build();
  const cli = (args: string[]): Variant[] => [
    ...(before
      ? [
          { label: 'before, tsx', args: tsxCli(before, args), cwd: before },
          { label: 'before, tsx, cold cache', args: tsxCli(before, args), cwd: before, coldCache: true },
        ]
      : []),
    { label: 'after, tsx', args: tsxCli(REPOSITORY_ROOT, args), cwd: REPOSITORY_ROOT },
    { label: 'after, compiled (node dist/bootstrap/cli.js)', args: [join(out, 'bootstrap/cli.js'), ...args], cwd: out },
  ];

  const loadBefore = loadavg();
  const sections = [table('bootstrap --dry-run --offline', measure(cli(offlineArgs)))];

  if (values.status) {
    const { postgresqlEngine } = await import('../bootstrap/adapters/postgresql.ts');
    const { runBootstrap } = await import('../bootstrap/runner.ts');
    if ('unavailable' in postgresqlEngine.embedded) throw new Error(postgresqlEngine.embedded.unavailable);
    log('starting an embedded PostgreSQL and bringing it up to date');
    const server = await postgresqlEngine.embedded.start();
    try {
      const applied = await runBootstrap({ mode: 'apply', env: server.env, registry: [postgresqlEngine], readyTimeoutMs: 30_000, lockTimeoutMs: 30_000 });
      if (!applied.ok) throw new Error(`the first apply failed: ${JSON.stringify(applied.engines.map((engine) => engine.error))}`);
      const status = cli(['--status']).map((variant) => ({ ...variant, env: server.env }));
      sections.push(table(`bootstrap --status, DATABASE_URL only (${server.description}, nothing to do)`, measure(status)));
    } finally {
      await server.stop();
    }
  }
  const loadAfter = loadavg();
  const load = (values: number[]) => values.map((value) => value.toFixed(2)).join(' / ');
  process.stdout.write(
    [`${cpus().length} cores, Node.js ${process.versions.node}; load average (1/5/15 min) ${load(loadBefore)} at the start, ${load(loadAfter)} at the end`, '', ...sections].join(
      '\n',
    ),
  );
} catch (error) {
  process.stderr.write(`bench:startup: ${(error as Error).message}\n`);
  process.exitCode = 1;
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
