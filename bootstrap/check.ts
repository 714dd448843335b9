/**
 * `npm run check -- [--only <engine>[,..]] [--skip <engine>[,..]]`: for every engine, starts a
 * throwaway one the way this machine can run it (each engine's `embedded`: PostgreSQL from npm,
 * ClickHouse in-process through chdb, Redis when `redis-server` is on PATH), applies everything
 * with the real runner, runs it a second time (which must change nothing), and tears it down.
 * The fast way to validate a new migration without Docker.
 *
 * What counts, derived from each engine's `embedded` and nothing engine-specific here:
 * - an engine that could not be started because a program is missing (`MissingProgram`) fails
 *   the check, with the command that installs it;
 * - an engine that no machine like this one can run (`embedded.unavailable`: no server from npm
 *   or Debian) is said to be not checkable here and does not fail it, unless `--only` names it;
 * - a check that checked nothing fails.
 * Exit codes: `command-line.ts` (0 passed, 1 failed, 2 a usage error).
 */
import { ENGINE_MODULES } from '../databases/index.ts';
import type { EngineModule } from '../databases/engine.ts';
import { defineCommand, formatSeconds, progressWanted, PROGRESS_VARIABLE, waitLine } from './command-line.ts';
import type { AnyBootstrapEngine, EmbeddedEngine } from './contract.ts';
import { MissingProgram } from './embedded/missing-program.ts';
import { toError } from './errors.ts';
import { reportText } from './format.ts';
import { runBootstrap, type BootstrapReport, type ProgressEvent } from './runner.ts';

const NAMES = ENGINE_MODULES.map((module) => module.name);

const command = defineCommand({
  name: 'check',
  synopsis: ['npm run check -- [options]'],
  summary:
    'Starts a throwaway server of each engine this machine can run, applies everything with the real bootstrap, checks that a second run changes nothing, and removes the server.',
  options: {
    only: { type: 'string', value: '<engine>[,<engine>]', list: true, choices: NAMES, description: 'check only these; one that cannot run here then fails the check' },
    skip: { type: 'string', value: '<engine>[,<engine>]', list: true, choices: NAMES, description: 'check all engines but these' },
    progress: { type: 'boolean', description: `print what starts and waits even when stderr is not a terminal (or set ${PROGRESS_VARIABLE}=1)` },
  },
  notes: `engines: ${NAMES.join(', ')}.
An engine no machine like this one can run (no server from npm or Debian) is reported as not
checkable here and does not fail the check, unless --only names it. A program an engine needs
that is missing (redis-server, psql) fails it, with the command that installs it.`,
  exitCodes: {
    ok: 'every engine checked passed',
    failed: 'an engine failed, could not be started (a program missing), or was named by --only and cannot run here; or nothing was checked',
  },
});

const { values } = command.parse();
if (values.only && values.skip) command.fail('--only and --skip choose the same thing two ways; give one');

type Outcome = 'passed' | 'failed' | 'missing program' | 'not checkable';

interface CheckResult {
  engine: string;
  outcome: Outcome;
  summary: string;
  durationMs: number;
  /** For a missing program: the command that installs it. */
  install?: string;
}

const TIMEOUTS = { readyTimeoutMs: 30_000, lockTimeoutMs: 30_000 };
const showProgress = progressWanted(values);
const progress = (line: string): void => {
  if (showProgress) process.stderr.write(`${line}\n`);
};
const onProgress = (event: ProgressEvent): void => {
  // The check's own bounds, not options of its command line.
  if (event.type === 'waiting') progress(waitLine(event.engine, event, { option: false }));
};

/** What a run said of the application's login, checked after it. */
function logins(engine: BootstrapReport['engines'][number]): string {
  return engine.verifiedLogin ? `; ${engine.verifiedLogin}'s login accepted` : '';
}

/** Applies everything, then checks that a second run changes nothing; the summary says what ran. */
async function applyTwice(engine: AnyBootstrapEngine, embedded: EmbeddedEngine): Promise<Pick<CheckResult, 'outcome' | 'summary'>> {
  const options = {
    mode: 'apply' as const,
    only: [engine.name],
    registry: [engine],
    env: embedded.env,
    ...(embedded.client ? { clients: { [engine.name]: embedded.client } } : {}),
    ...TIMEOUTS,
    onProgress,
  };
  const first = await runBootstrap(options);
  if (!first.ok) return { outcome: 'failed', summary: reportText(first).err.trim() };
  const second = await runBootstrap(options);
  const again = second.engines[0]?.changed.length ?? 0;
  if (!second.ok || again > 0) {
    return { outcome: 'failed', summary: `a second run changed ${again} thing(s) again: ${reportText(second).err.trim()}` };
  }
  const inSync = second.engines[0]!.plan!.inSync.length;
  return {
    outcome: 'passed',
    summary:
      `${first.engines[0]!.changed.length} changes applied to ${embedded.description}, ${inSync} in sync after; second run changed nothing` +
      `${logins(second.engines[0]!)}${embedded.note ? `; ${embedded.note}` : ''}`,
  };
}

async function check(module: EngineModule): Promise<Omit<CheckResult, 'durationMs'>> {
  const engine = await module.bootstrap();
  if ('unavailable' in engine.embedded) {
    const { unavailable } = engine.embedded;
    return values.only?.includes(module.name)
      ? { engine: module.name, outcome: 'failed', summary: `not checkable here, and --only names it: ${unavailable}` }
      : { engine: module.name, outcome: 'not checkable', summary: unavailable };
  }
  progress(`${module.name}: starting a throwaway ${module.displayName}…`);
  const starting = performance.now();
  let embedded: EmbeddedEngine;
  try {
    embedded = await engine.embedded.start();
  } catch (error) {
    if (error instanceof MissingProgram) return { engine: module.name, outcome: 'missing program', summary: `cannot be started here: ${error.message}`, install: error.install };
    throw error;
  }
  progress(`${module.name}: ${embedded.description} started in ${formatSeconds(performance.now() - starting)}; applying everything, then again`);
  try {
    return { engine: module.name, ...(await applyTwice(engine, embedded)) };
  } finally {
    await embedded.stop();
  }
}

const LABELS: Record<Outcome, string> = { passed: 'ok', failed: 'FAILED', 'missing program': 'FAILED', 'not checkable': 'not here' };
const width = Math.max(...Object.values(LABELS).map((label) => label.length));

const started = performance.now();
const chosen = ENGINE_MODULES.filter((module) => (values.only ? values.only.includes(module.name) : !values.skip?.includes(module.name)));
const results: CheckResult[] = [];
for (const module of chosen) {
  const engineStarted = performance.now();
  let result: Omit<CheckResult, 'durationMs'>;
  try {
    result = await check(module);
  } catch (error) {
    result = { engine: module.name, outcome: 'failed', summary: toError(error).message };
  }
  const durationMs = performance.now() - engineStarted;
  results.push({ ...result, durationMs });
  // Each engine's line as soon as it is done: a check of several engines is not silent until the end.
  const timing = result.outcome === 'not checkable' ? '' : `, ${formatSeconds(durationMs)}`;
  process.stdout.write(`${LABELS[result.outcome].padEnd(width)}  ${result.engine}: ${result.summary}${timing}\n`);
}

/** One line: what became of the engines, what to install, what was left out, how long it took. */
function summary(): string {
  const of = (...outcomes: Outcome[]) => results.filter((result) => outcomes.includes(result.outcome));
  const names = (some: ReadonlyArray<{ engine: string }>) => some.map((result) => result.engine).join(', ');
  const checked = of('passed', 'failed', 'missing program');
  const missing = of('missing program');
  const install = [...new Set(missing.map((result) => result.install!.replace(/^apt-get install -y /, '')))];
  const failed = `${of('failed', 'missing program').length} failed${missing.length > 0 ? ` (${names(missing)} could not be started here; install: apt-get install -y ${install.join(' ')})` : ''}`;
  const parts = [checked.length === 0 ? 'nothing checked' : `${checked.length} engine${checked.length === 1 ? '' : 's'} checked: ${of('passed').length} passed, ${failed}`];
  const notHere = of('not checkable');
  if (notHere.length > 0) parts.push(`${notHere.length} not checkable here (${names(notHere)}: no server can run on this machine)`);
  const left = ENGINE_MODULES.filter((module) => !chosen.includes(module)).map((module) => ({ engine: module.name }));
  if (left.length > 0) parts.push(`${left.length} left out by ${values.only ? '--only' : '--skip'} (${names(left)})`);
  return `check: ${parts.join('; ')}; ${formatSeconds(performance.now() - started)}`;
}

process.stdout.write(`${summary()}\n`);
const nothingChecked = results.every((result) => result.outcome === 'not checkable');
process.exit(nothingChecked || results.some((result) => result.outcome === 'failed' || result.outcome === 'missing program') ? 1 : 0);
