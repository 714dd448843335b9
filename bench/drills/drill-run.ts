/**
 * What every drill of real processes shares (`bench/drills/patroni.ts`, `redis-sentinel.ts`): its
 * clock and progress lines, the report it fills, stopping what it started whatever ends it, and
 * writing the JSON report and the table at the end. The drill itself only measures.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { EXIT } from '../../bootstrap/command-line.ts';
import { REPOSITORY_ROOT } from '../../bootstrap/paths.ts';

export interface DrillRun {
  /** Milliseconds (performance.now()) as seconds with three decimals. */
  seconds(ms: number): number;
  /** A progress line on stderr, stamped with the seconds since the start. */
  log(line: string): void;
  /** The JSON report: the machine and the bounds from the start, the drill's sections after. */
  report: Record<string, unknown>;
  /** What made the drill fail (it exits 1 when there is any). */
  failures: string[];
}

/** Starts a drill's clock and report, with the bounds beyond which it fails. */
export function startDrill(bounds: Record<string, number>): DrillRun {
  const started = performance.now();
  return {
    seconds: (ms) => Math.round(ms) / 1000,
    log: (line) => void process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(1).padStart(5)} s] ${line}\n`),
    report: {
      startedAt: new Date().toISOString(),
      machine: { cores: cpus().length, loadAverageAtStart: loadavg().map((value) => Number(value.toFixed(2))) },
      bounds,
    },
    failures: [],
  };
}

/** The first line a program prints for its version (`patroni --version`), or `unknown`. */
export function toolVersion(commandLine: string[]): string {
  try {
    return execFileSync(commandLine[0]!, commandLine.slice(1), { encoding: 'utf8' }).split('\n')[0]!.trim();
  } catch {
    return 'unknown';
  }
}

/**
 * Stops what the drill started on SIGINT and SIGTERM (then exits 130), and kills it at once on any
 * other exit (an uncaught error): nothing a drill starts outlives it.
 */
export function stopOnExit(run: DrillRun, stop: () => Promise<void>, killNow: () => void): void {
  const interrupted = async () => {
    run.log('interrupted: stopping what the drill started');
    await stop().catch(() => {});
    process.exit(130);
  };
  process.once('SIGINT', () => void interrupted());
  process.once('SIGTERM', () => void interrupted());
  process.on('exit', killNow);
}

/**
 * Writes the report (`out`, or `bench/results/<name>-<time>.json`), prints the table of figures, the
 * verdict and where the report is, and exits: 1 when there were failures.
 */
export function finishDrill(
  run: DrillRun,
  options: { name: string; out?: string; startedAt: number; table: (figure: (section: string, key: string) => string) => string[]; ok: string },
): never {
  const { report, failures } = run;
  report.totalSeconds = run.seconds(performance.now() - options.startedAt);
  report.failures = failures;
  report.ok = failures.length === 0;
  const out = options.out ? resolve(options.out) : join(REPOSITORY_ROOT, 'bench', 'results', `${options.name}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
  const figure = (section: string, key: string) => String((report[section] as Record<string, unknown> | undefined)?.[key] ?? '—');
  process.stdout.write(
    [...options.table(figure), '', failures.length ? `drill:${options.name.replace(/-drill$/, '')} FAILED: ${failures.join('; ')}` : options.ok, `report: ${out}`, ''].join('\n'),
  );
  process.exit(failures.length ? EXIT.failed : EXIT.ok);
}
