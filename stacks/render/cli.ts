/**
 * `npm run render -- --stack <name> --out <dir>`; see `render.ts`. Exit codes:
 * `bootstrap/command-line.ts` (0 written, 1 an invalid config or a failure, 2 a usage error).
 */
import { join, resolve } from 'node:path';
import { defineCommand } from '../../bootstrap/command-line.ts';
import { toError } from '../../bootstrap/errors.ts';
import { stackNames } from './stack-file.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');

const command = defineCommand({
  name: 'render',
  synopsis: ['npm run render -- --stack <name> --out <dir>'],
  summary: 'Writes what a stack would deploy, for review: the Pulumi program run under mocks (no Pulumi CLI, Docker engine or cluster), every secret value redacted.',
  options: {
    stack: { type: 'string', value: '<name>', required: true, description: 'the stack: one with a Pulumi.<name>.yaml here' },
    out: { type: 'string', value: '<dir>', required: true, description: 'where to write: <dir>/<stack>/' },
  },
  notes: `stacks with a file here: ${stackNames(ROOT).join(', ')}`,
  exitCodes: { ok: 'rendered', failed: "the stack's config is invalid (the message names the key), or writing failed" },
});

const { values } = command.parse();
if (!stackNames(ROOT).includes(values.stack)) {
  command.fail(`no stack file ${join(ROOT, `Pulumi.${values.stack}.yaml`)}; stacks with a file here: ${stackNames(ROOT).join(', ')}`);
}

// Loaded once the arguments are read: the Pulumi program and its mocks take a while, --help does not.
const { ConfigError } = await import('../config/index.ts');
const { REDACTED, renderStack } = await import('./render.ts');
try {
  const result = await renderStack(ROOT, values.stack, values.out);
  process.stdout.write(
    `rendered ${result.resources.length} resources of stack ${values.stack} (${result.target}) to ${result.directory}: ${result.files.join(', ')}; secrets shown as ${REDACTED}; diagram: ${result.diagram}\n`,
  );
} catch (error) {
  process.stderr.write(`render: ${error instanceof ConfigError ? error.message : toError(error).message}\n`);
  process.exit(1);
}
