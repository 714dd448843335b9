/**
 * What the bootstrap run depends on, as one hash: the assets (`databases/`), the bootstrap code
 * (`bootstrap/`), how it is compiled for the image (`tsconfig*.json`) and the locked dependencies. A run's resource name carries it, so `pulumi up`
 * runs the bootstrap again when, and only when, one of these or an engine's endpoint changes.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { normalizeForChecksum } from '../../bootstrap/checksum.ts';

/** The inputs of the bootstrap image and run, relative to the repository root. */
export const BOOTSTRAP_INPUTS = ['databases', 'bootstrap', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json'] as const;

function files(root: string, path: string): string[] {
  const full = join(root, path);
  if (!statSync(full).isDirectory()) return [path];
  return readdirSync(full)
    .sort()
    .flatMap((name) => (name === 'node_modules' ? [] : files(root, join(path, name))));
}

/**
 * SHA-256 over every input file's path and content (line endings normalised, as the bootstrap's
 * own checksums are: a CRLF checkout triggers nothing).
 */
export function bootstrapContentHash(root: string, inputs: readonly string[] = BOOTSTRAP_INPUTS): string {
  const hash = createHash('sha256');
  for (const input of inputs) {
    for (const file of files(root, input)) {
      hash.update(`${relative(root, join(root, file))}\0${normalizeForChecksum(readFileSync(join(root, file), 'utf8'))}\0`);
    }
  }
  return hash.digest('hex');
}

/** The run's identity: the content hash, the image and where the engines are. */
export function bootstrapTrigger(contentHash: string, image: string, endpoints: readonly string[]): string {
  return createHash('sha256')
    .update([contentHash, image, ...[...endpoints].sort()].join('\n'))
    .digest('hex')
    .slice(0, 10);
}
