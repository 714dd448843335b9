/** `npm run render -- --stack <name> --out <dir>`; see `render.ts`. */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/index.ts';
import { REDACTED, renderStack } from './render.ts';
import { toError } from '../../bootstrap/errors.ts';

function fail(message: string, code: number): never {
  process.stderr.write(`render: ${message}\n`);
  process.exit(code);
}

let values;
try {
  ({ values } = parseArgs({ options: { stack: { type: 'string' }, out: { type: 'string' } }, strict: true }));
} catch (error) {
  fail(`${toError(error).message}\nusage: npm run render -- --stack <name> --out <dir>`, 2);
}
if (!values.stack || !values.out) fail('usage: npm run render -- --stack <name> --out <dir>', 2);

try {
  const result = await renderStack(resolve(import.meta.dirname, '..', '..'), values.stack, values.out);
  process.stdout.write(
    `rendered ${result.resources.length} resources of stack ${values.stack} (${result.target}) to ${result.directory}: ${result.files.join(', ')}; secrets shown as ${REDACTED}\n`,
  );
} catch (error) {
  fail(error instanceof ConfigError ? error.message : toError(error).message, error instanceof ConfigError ? 1 : 2);
}
