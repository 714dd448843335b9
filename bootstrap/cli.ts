/**
 * `npm run bootstrap -- [options]` (`--help` lists them): applies pending assets to every engine
 * whose URL variable is set (DATABASE_URL, ...). Exit codes: `command-line.ts` (0 done, 1 not
 * done, 2 a usage error).
 */
import { ENGINE_MODULES } from '../databases/index.ts';
import { defineCommand, formatSeconds, positiveNumber, progressWanted, PROGRESS_VARIABLE, UsageError, waitLine } from './command-line.ts';
import { withPasswords } from './env.ts';
import { toError } from './errors.ts';
import { exitCode, reportJson, reportText } from './format.ts';
import { runBootstrap, type Mode, type ProgressEvent } from './runner.ts';

const ENGINE_NAMES = ENGINE_MODULES.map((module) => module.name);

const command = defineCommand({
  name: 'bootstrap',
  synopsis: ['npm run bootstrap -- [options]'],
  summary: 'Applies the pending schemas, migrations and definitions to every engine whose URL variable is set, in a fixed order.',
  options: {
    only: { type: 'string', value: '<engine>[,<engine>]', list: true, choices: ENGINE_NAMES, description: 'only these engines (each must have its URL variable set)' },
    'dry-run': { type: 'boolean', description: 'print the plan, change nothing' },
    offline: { type: 'boolean', description: 'with --dry-run: plan for freshly deployed engines, connect to nothing' },
    status: { type: 'boolean', description: 'print what is pending; exit 1 while anything is' },
    json: { type: 'boolean', description: 'print the report as JSON on stdout (no progress lines)' },
    progress: { type: 'boolean', description: `print progress lines even when stderr is not a terminal (or set ${PROGRESS_VARIABLE}=1)` },
    'ready-timeout': { type: 'string', value: '<seconds>', default: '60', description: 'how long to wait for an engine to accept connections' },
    'lock-timeout': { type: 'string', value: '<seconds>', default: '300', description: "how long to wait for another bootstrap's lock and for table locks" },
    'statement-timeout': { type: 'string', value: '<seconds>', default: '600', description: 'how long one statement or request may run' },
    'replace-indexes': { type: 'boolean', description: 'drop and recreate an index whose definition differs' },
  },
  notes: `engines, in the order they are applied, each with the variable its URL is read from:
  ${ENGINE_MODULES.map((module) => `${module.name} (${module.urlVariable})`).join(', ')}
a password may be given beside its URL in <URL variable>_PASSWORD.`,
  exitCodes: {
    ok: 'everything asked for is done (with --status: nothing pending)',
    failed: 'not done: an engine failed, was unreachable or refused a change; with --status, changes pending',
  },
});

const { values } = command.parse();
if (values['dry-run'] && values.status) command.fail('--dry-run and --status are two different questions; ask one');
if (values.offline && !values['dry-run']) command.fail('--offline only goes with --dry-run');

function milliseconds(option: 'ready-timeout' | 'lock-timeout' | 'statement-timeout'): number {
  try {
    return positiveNumber(values[option], `--${option}`, 'a number of seconds above 0') * 1000;
  } catch (error) {
    return command.fail(error instanceof UsageError ? error.message : toError(error).message);
  }
}
const readyTimeoutMs = milliseconds('ready-timeout');
const lockTimeoutMs = milliseconds('lock-timeout');
const statementTimeoutMs = milliseconds('statement-timeout');

const only = values.only;
const mode: Mode = values.status ? 'status' : values['dry-run'] ? 'dry-run' : 'apply';

/** The run's environment, with each <URL variable>_PASSWORD in its URL; a password given twice is a usage error. */
function runEnvironment(): Record<string, string | undefined> {
  try {
    return withPasswords(
      process.env,
      ENGINE_MODULES.map((module) => module.urlVariable),
    );
  } catch (error) {
    return command.fail(toError(error).message);
  }
}
const runEnv = runEnvironment();

/**
 * The first line of each engine says where it connects and how long it may wait (unless --json);
 * a wait's lines (each retry, elapsed time and the option bounding it) are progress: on a terminal,
 * or with --progress / ALLIXIOS_PROGRESS=1.
 */
const showWaits = progressWanted(values);
function printProgress(event: ProgressEvent): void {
  if (event.type === 'connecting' && !values.json) {
    process.stderr.write(`${event.engine}: connecting to ${event.target} (up to --ready-timeout ${formatSeconds(readyTimeoutMs)})\n`);
  } else if (event.type === 'waiting' && showWaits) {
    process.stderr.write(`${waitLine(event.engine, event)}\n`);
  }
}

const report = await runBootstrap({
  mode,
  offline: values.offline,
  ...(only ? { only } : {}),
  env: runEnv,
  readyTimeoutMs,
  lockTimeoutMs,
  statementTimeoutMs,
  flags: { replaceIndexes: values['replace-indexes'] },
  onProgress: printProgress,
});

if (values.json) {
  process.stdout.write(`${JSON.stringify(reportJson(report), null, 2)}\n`);
  if (!report.ok) process.stderr.write(reportText(report).err);
} else {
  const { out, err } = reportText(report);
  process.stdout.write(out);
  process.stderr.write(err);
}
process.exit(exitCode(report));
