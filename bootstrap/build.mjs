/**
 * `npm run build [-- --out-dir <dir>]`: the bootstrap as JavaScript, the way its image runs it
 * (`node dist/bootstrap/cli.js`: no TypeScript compiled at every start).
 *
 * tsc compiles bootstrap/ and databases/ (tsconfig.build.json, which rewrites the relative `.ts`
 * imports to `.js`); then the files of databases/ that are not TypeScript (SQL, configs, the ACL
 * and users templates) are copied beside the compiled modules: an engine reads its assets next
 * to its own module (`moduleDirectory(import.meta.url)`), and the bootstrap shows and records
 * paths relative to the tree it runs from (`bootstrap/paths.ts`), `databases/<engine>/...` in
 * the output as in the repository. Plain JavaScript, so that it runs without a TypeScript loader.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

// The repository's command-line convention (bootstrap/command-line.ts), written out: this file
// runs under plain Node in the image's build stage, where the TypeScript module cannot be loaded.
const USAGE = `usage: npm run build -- [--out-dir <dir>] [--no-check]

options:
      --out-dir <dir>  where to write (default dist); only its bootstrap/ and databases/ are replaced
      --no-check       emit without type-checking (tsc --noCheck): the same files, sooner; for tests
  -h, --help           print this help and exit`;
const HELP = `Compiles bootstrap/ and databases/ to JavaScript (tsconfig.build.json) and copies the engines' asset files beside it.

${USAGE}

exit codes:
  0  built
  1  tsc failed, or the output could not be written
  2  a usage error (unknown option, bad or missing value): nothing was done`;

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

let values;
try {
  ({ values } = parseArgs({
    options: { 'out-dir': { type: 'string', default: 'dist' }, 'no-check': { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } },
    strict: true,
  }));
} catch (error) {
  // One line naming the option (the repository's command-line convention), not Node's hint.
  const unknown = /^Unknown option '([^']+)'/.exec(error.message);
  process.stderr.write(`build: ${unknown ? `unknown option ${unknown[1]}` : error.message.split('. ')[0]}\n${USAGE}\n`);
  process.exit(2);
}
if (values.help) {
  process.stdout.write(`${HELP}\n`);
  process.exit(0);
}

const out = resolve(values['out-dir']);
if (out === root) {
  process.stderr.write(`build: --out-dir must not be the repository itself\n${USAGE}\n`);
  process.exit(2);
}
// Only what a build writes is replaced: a module removed from the sources leaves nothing behind.
for (const folder of ['bootstrap', 'databases']) rmSync(join(out, folder), { recursive: true, force: true });

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
try {
  // Type errors fail the build (the image's too), unless --no-check: `npm run typecheck` has them.
  execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', out, ...(values['no-check'] ? ['--noCheck'] : [])], { stdio: 'inherit' });
} catch (error) {
  process.stderr.write(`build: tsc failed (exit ${error.status ?? 'unknown'})\n`);
  process.exit(1);
}

cpSync(join(root, 'databases'), join(out, 'databases'), { recursive: true, filter: (source) => !source.endsWith('.ts') });
// The output is ES modules wherever it is written, also outside this package.
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'package.json'), `${JSON.stringify({ type: 'module' }, null, 2)}\n`);
process.stdout.write(`build: ${out}\n`);
