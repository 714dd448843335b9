/**
 * Preloaded with `node --import`: records every package the project's own code imports (a bare
 * specifier imported from a file outside node_modules), one name a line, to the file named by
 * IMPORTED_PACKAGES_FILE. What the tests of the bootstrap's loading read to see which drivers a
 * run loaded. The same file registers itself as the resolve hook (Node's hooks run on their
 * own thread, which imports it again).
 */
import { appendFileSync } from 'node:fs';
import { register } from 'node:module';
import process from 'node:process';
import { isMainThread } from 'node:worker_threads';

const file = process.env.IMPORTED_PACKAGES_FILE;

if (isMainThread && file) register(import.meta.url);

/** `@scope/name` or `name` of a bare specifier (`pg`, `@clickhouse/client`, `chdb/connection`). */
function packageName(specifier) {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  const bare = !/^(\.|\/|node:|file:|data:)/.test(specifier);
  const fromProject = context.parentURL !== undefined && !context.parentURL.includes('/node_modules/');
  if (file && bare && fromProject && resolved.url.includes('/node_modules/')) appendFileSync(file, `${packageName(specifier)}\n`);
  return resolved;
}
