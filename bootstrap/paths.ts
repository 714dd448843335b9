/**
 * Where the bootstrap shows paths from: the tree it runs from, so messages and ledgers say
 * `databases/<engine>/...`. That is the repository, or the output of `npm run build` (`dist/`,
 * the image's code), which holds `bootstrap/` and `databases/` with their assets in the same
 * layout: the paths a ledger records are the same from both.
 */
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPOSITORY_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * What paths under `directory` are shown relative to: the repository when the folder is in it,
 * the folder itself when it lies elsewhere (a folder a test gives).
 */
export function displayRoot(directory: string): string {
  return relative(REPOSITORY_ROOT, directory).startsWith('..') ? directory : REPOSITORY_ROOT;
}
