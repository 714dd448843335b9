/**
 * `npm run restore -- --engine <engine> (--stack <stack> | --from <path>) --target <target> [--to <time> | --backup <id>] [--execute]`
 *
 * Restores one engine's backup into a new, empty target and verifies it, with the engine's own
 * tool (databases/<engine>/restore.ts: pgBackRest, redis-server, RESTORE, mongorestore,
 * Elasticsearch's snapshot restore). It prints the plan first and stops there unless `--execute`
 * is given; a target that holds data is refused unless `--replace-existing` names it as well
 * (asked twice). With `--stack`, the backup's location comes from the stack's `allixios:backups`;
 * the object store's credentials come from the operator's environment (AWS_ACCESS_KEY_ID and
 * AWS_SECRET_ACCESS_KEY, or the cloud's own), never from the stack. Exit codes:
 * `bootstrap/command-line.ts` (0 planned or restored and verified, 1 refused or failed, 2 usage).
 */
import { resolve } from 'node:path';
import { defineCommand, EXIT } from '../../bootstrap/command-line.ts';
import { toError } from '../../bootstrap/errors.ts';
import { stackNames } from '../render/stack-file.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const ENGINES = ['postgresql', 'mongodb', 'redis', 'elasticsearch', 'clickhouse'] as const;

export const restoreCommand = defineCommand({
  name: 'restore',
  synopsis: [
    'npm run restore -- --engine <engine> --stack <stack> --target <target> [--to <time> | --backup <id>] [--execute]',
    'npm run restore -- --engine <engine> --from <path> --target <target> [--to <time> | --backup <id>] [--execute]',
  ],
  summary:
    "Restores an engine's backup into a new, empty target with the engine's own tool and verifies it. Prints the plan and stops unless --execute is given; never writes over data unless --replace-existing names the target too.",
  options: {
    engine: { type: 'string', value: '<engine>', required: true, choices: ENGINES, description: 'the engine whose backup to restore' },
    stack: { type: 'string', value: '<stack>', description: "the stack whose object store holds the backup (its Pulumi.<stack>.yaml's allixios:backups)" },
    from: { type: 'string', value: '<path>', description: 'a local copy of the backup instead (a pgBackRest repository, an RDB file, a dump archive, a backup directory)' },
    target: {
      type: 'string',
      value: '<target>',
      required: true,
      description: 'where to restore: a new data directory (PostgreSQL, Redis), a new database (ClickHouse, MongoDB), an index prefix (Elasticsearch)',
    },
    to: { type: 'string', value: '<time>', description: 'recover to this moment (ISO 8601 with a zone, e.g. 2026-12-08T01:30:00Z); PostgreSQL only' },
    backup: { type: 'string', value: '<id>', description: 'the backup to restore (its label or timestamp); default: the latest' },
    execute: { type: 'boolean', description: 'do it (without: print the plan only)' },
    'replace-existing': { type: 'string', value: '<target>', description: 'the target holds data: replace it (must repeat --target; with --execute only)' },
  },
  notes: [
    `stacks with a file here: ${stackNames(ROOT).join(', ')}`,
    "The engine's URL, for an engine restored into a running server (ClickHouse, MongoDB, Elasticsearch), comes from the variable the platform reads it from (CLICKHOUSE_URL, MONGODB_URL, ELASTICSEARCH_URL).",
    'Runbooks: databases/<engine>/README.md, "Backups and restore".',
  ].join('\n'),
  exitCodes: { ok: 'the plan printed, or the restore done and verified', failed: 'refused (a target with data, a time outside the backups) or failed; the message says which' },
});

/** The moment of `--to`: ISO 8601 with a zone, so it never depends on the machine's. */
export function parseRecoveryTime(value: string): Date {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(value)) {
    throw new Error(`--to: expected an ISO 8601 time with a zone such as 2026-12-08T01:30:00Z, got ${JSON.stringify(value)}`);
  }
  const time = new Date(value);
  // Date accepts 2026-02-31 as March 3rd: the calendar date must be the one written.
  const [year, month, day] = value.slice(0, 10).split('-').map(Number) as [number, number, number];
  const written = new Date(Date.UTC(year, month - 1, day));
  if (Number.isNaN(time.getTime()) || written.getUTCMonth() !== month - 1 || written.getUTCDate() !== day) {
    throw new Error(`--to: expected a real moment, got ${JSON.stringify(value)}`);
  }
  if (time.getTime() > Date.now()) throw new Error(`--to: expected a moment in the past, got ${value}, which is after now (${new Date().toISOString()})`);
  return time;
}

async function main(): Promise<void> {
  const { values } = restoreCommand.parse();
  if ((values.stack === undefined) === (values.from === undefined)) restoreCommand.fail("expected exactly one of --stack (the stack's object store) and --from (a local copy)");
  if (values.to !== undefined && values.backup !== undefined) restoreCommand.fail('expected at most one of --to (a moment) and --backup (a backup)');
  if (values['replace-existing'] !== undefined && (!values.execute || values['replace-existing'] !== values.target)) {
    restoreCommand.fail(
      `--replace-existing must name the target again (${JSON.stringify(values.target)}) and come with --execute, got ${JSON.stringify(values['replace-existing'])}`,
    );
  }
  if (values.stack !== undefined && !stackNames(ROOT).includes(values.stack))
    restoreCommand.fail(`no stack file Pulumi.${values.stack}.yaml; stacks with a file here: ${stackNames(ROOT).join(', ')}`);

  // Loaded once the arguments are read: --help stays quick.
  const { restoreRequest } = await import('./request.ts');
  const request = await restoreRequest(ROOT, {
    engine: values.engine,
    ...(values.stack !== undefined ? { stack: values.stack } : {}),
    ...(values.from !== undefined ? { from: values.from } : {}),
    ...(values.to !== undefined ? { to: parseRecoveryTime(values.to) } : {}),
    ...(values.backup !== undefined ? { backup: values.backup } : {}),
    target: values.target,
    replaceExisting: values['replace-existing'] !== undefined,
  });
  const plan = await request.restore.plan(request.request);
  process.stdout.write(`restore ${values.engine} (${request.source}) into ${values.target}:\n${plan.steps.map((step, index) => `  ${index + 1}. ${step}`).join('\n')}\n`);
  if (!values.execute) {
    process.stdout.write('dry run: nothing was done; add --execute to do it\n');
    return;
  }
  const started = performance.now();
  const figures = await plan.execute((line) => process.stderr.write(`restore: ${line}\n`));
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  process.stdout.write(
    `restored and verified in ${seconds} s: ${Object.entries(figures)
      .map(([name, value]) => `${name} ${value}`)
      .join(', ')}\n`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error: unknown) => {
    process.stderr.write(`restore: ${toError(error).message}\n`);
    process.exit(EXIT.failed);
  });
}
