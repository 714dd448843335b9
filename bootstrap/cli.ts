/**
 * `npm run bootstrap -- [--only <engine>] [--dry-run [--offline]] [--status] [--json]
 *                      [--ready-timeout <s>] [--lock-timeout <s>] [--statement-timeout <s>] [--replace-indexes]`
 * Applies pending assets to every engine whose URL variable is set (DATABASE_URL, ...).
 * Exit code 0 only when everything asked for is done; 1 when not; 2 for a usage error.
 */
import { parseArgs } from 'node:util';
import { BOOTSTRAP_ENGINES } from './engines.ts';
import { withPasswords } from './env.ts';
import { toError } from './errors.ts';
import { exitCode, reportJson, reportText } from './format.ts';
import { runBootstrap, type Mode } from './runner.ts';

const USAGE = `usage: npm run bootstrap -- [--only <engine>[,<engine>]] [--dry-run [--offline]] [--status] [--json]
                            [--ready-timeout <seconds>] [--lock-timeout <seconds>] [--statement-timeout <seconds>]
                            [--replace-indexes]
engines, in the order they are applied, each with the variable its URL is read from:
  ${BOOTSTRAP_ENGINES.map((engine) => `${engine.name} (${engine.urlVariable})`).join(', ')}`;

function usage(message: string): never {
  process.stderr.write(`bootstrap: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function seconds(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback * 1000;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0) usage(`${flag} expects a number of seconds above 0, got "${value}"`);
  return parsed * 1000;
}

let parsed;
try {
  parsed = parseArgs({
    options: {
      only: { type: 'string', multiple: true },
      'dry-run': { type: 'boolean', default: false },
      offline: { type: 'boolean', default: false },
      status: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      'ready-timeout': { type: 'string' },
      'lock-timeout': { type: 'string' },
      'statement-timeout': { type: 'string' },
      'replace-indexes': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
} catch (error) {
  usage(toError(error).message);
}
const { values } = parsed;
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (values['dry-run'] && values.status) usage('--dry-run and --status are two different questions; ask one');
if (values.offline && !values['dry-run']) usage('--offline only goes with --dry-run');

const only = values.only?.flatMap((value) => value.split(',')).map((value) => value.trim());
const names = BOOTSTRAP_ENGINES.map((engine) => engine.name);
for (const engine of only ?? []) {
  if (!names.includes(engine)) usage(`--only expects one of ${names.join(', ')}, got "${engine}"`);
}
const mode: Mode = values.status ? 'status' : values['dry-run'] ? 'dry-run' : 'apply';

let runEnv: Record<string, string | undefined>;
try {
  runEnv = withPasswords(
    process.env,
    BOOTSTRAP_ENGINES.map((engine) => engine.urlVariable),
  );
} catch (error) {
  usage(toError(error).message);
}

const report = await runBootstrap({
  mode,
  offline: values.offline,
  ...(only ? { only } : {}),
  env: runEnv,
  readyTimeoutMs: seconds(values['ready-timeout'], '--ready-timeout', 60),
  lockTimeoutMs: seconds(values['lock-timeout'], '--lock-timeout', 300),
  statementTimeoutMs: seconds(values['statement-timeout'], '--statement-timeout', 600),
  flags: { replaceIndexes: values['replace-indexes'] },
  ...(values.json
    ? {}
    : {
        onProgress: (event) => {
          if (event.type === 'connecting') process.stderr.write(`${event.engine}: connecting to ${event.target}\n`);
        },
      }),
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
