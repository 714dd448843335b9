/**
 * `npm ci` (`.ci/run`, every workflow) accepts `package-lock.json` only when it has an entry for
 * every optional dependency of every locked package, whatever the platform. chdb's packages for
 * other platforms are not on the registry this project reaches, so their entries are written by
 * hand, without an integrity hash (docs/ci.md, "Installing with npm ci"): these tests say which
 * entry is missing before `npm ci` fails with "Missing: ... from lock file", and that no package
 * this platform installs goes without a hash.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');

interface LockEntry {
  version?: string;
  integrity?: string;
  link?: boolean;
  optional?: boolean;
  os?: string[];
  cpu?: string[];
  optionalDependencies?: Record<string, string>;
}

type LockPackages = Record<string, LockEntry>;

/** The entry Node's resolution finds for `name` required from the package at `path` ('' is the root). */
function resolveEntry(packages: LockPackages, path: string, name: string): string | undefined {
  let directory = path;
  for (;;) {
    const candidate = `${directory ? `${directory}/` : ''}node_modules/${name}`;
    if (packages[candidate]) return candidate;
    if (!directory) return undefined;
    const parent = directory.lastIndexOf('/node_modules/');
    directory = parent === -1 ? '' : directory.slice(0, parent);
  }
}

/** What `npm ci` would miss: optional dependencies without an entry, or at another exact version. */
function missingOptionalEntries(packages: LockPackages): string[] {
  const problems: string[] = [];
  for (const [path, entry] of Object.entries(packages)) {
    for (const [name, range] of Object.entries(entry.optionalDependencies ?? {})) {
      const found = resolveEntry(packages, path, name);
      const dependent = path || 'the root package';
      if (!found) problems.push(`${name}@${range}, an optional dependency of ${dependent}, has no entry`);
      else if (/^\d+\.\d+\.\d+(-[\w.]+)?$/.test(range) && packages[found]!.version !== range) {
        problems.push(`${found} is ${packages[found]!.version}, ${dependent} asks for ${range}`);
      }
    }
  }
  return problems;
}

/** Entries npm would install on this platform without checking a hash. */
function unhashedForThisPlatform(packages: LockPackages, platform: string, arch: string): string[] {
  const matches = (list: string[] | undefined, value: string) =>
    list === undefined || (list.some((item) => !item.startsWith('!')) ? list.includes(value) : !list.includes(`!${value}`));
  return Object.entries(packages)
    .filter(([path, entry]) => path !== '' && !entry.link && !entry.integrity)
    .filter(([, entry]) => !entry.optional || (matches(entry.os, platform) && matches(entry.cpu, arch)))
    .map(([path]) => path);
}

const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: LockPackages };

describe('package-lock.json for npm ci', () => {
  it('has an entry for every optional dependency of every locked package, at the version it asks for', () => {
    expect(missingOptionalEntries(lock.packages)).toEqual([]);
  });

  it("names chdb's packages for every platform it lists", () => {
    const chdb = lock.packages['node_modules/chdb'];
    expect(Object.keys(chdb?.optionalDependencies ?? {}).sort()).toEqual([
      '@chdb/lib-darwin-arm64',
      '@chdb/lib-darwin-x64',
      '@chdb/lib-linux-arm64-gnu',
      '@chdb/lib-linux-x64-gnu',
    ]);
    for (const name of Object.keys(chdb!.optionalDependencies!)) expect(lock.packages[`node_modules/${name}`], name).toBeDefined();
  });

  it('has a hash for every package Linux x64 installs: only other platforms’ optional packages go without', () => {
    expect(unhashedForThisPlatform(lock.packages, 'linux', 'x64')).toEqual([]);
    expect(unhashedForThisPlatform(lock.packages, 'darwin', 'arm64')).toEqual(['node_modules/@chdb/lib-darwin-arm64']);
  });

  it('reports an optional dependency without an entry, and one locked at another version', () => {
    // Given a lock as `npm install` writes it where the registry lacks a platform's package
    const packages: LockPackages = {
      '': {},
      'node_modules/engine': { version: '1.0.0', integrity: 'sha512-x', optionalDependencies: { '@engine/darwin': '2.0.0', '@engine/linux': '2.0.0' } },
      'node_modules/@engine/linux': { version: '1.9.0', integrity: 'sha512-y', optional: true },
    };
    // Then both problems are named
    expect(missingOptionalEntries(packages)).toEqual([
      '@engine/darwin@2.0.0, an optional dependency of node_modules/engine, has no entry',
      'node_modules/@engine/linux is 1.9.0, node_modules/engine asks for 2.0.0',
    ]);
  });
});
