/**
 * The assets of an engine, read from its folder under `databases/`:
 *   V<version>__<description>.<ext>  versioned: applied once, in version order, never edited after
 *   R__<description>.<ext>           repeatable: re-applied whenever its content changes, after
 *                                    every versioned asset, in file-name order
 * Other files (README.md, ...) are not assets. A file that looks like an asset but is misnamed is
 * an error, never silently skipped.
 */
import { readdirSync, readFileSync, type Dirent } from 'node:fs';
import { join, relative } from 'node:path';
import type { EngineName } from '../databases/engine.ts';
import { checksum } from './checksum.ts';
import { BootstrapError } from './errors.ts';

export type AssetKind = 'versioned' | 'repeatable';

export interface Asset {
  engine: EngineName;
  kind: AssetKind;
  /** Versioned assets only. */
  version?: number;
  /** The file name, e.g. `V0001__users.sql`; a repeatable asset is identified by it. */
  name: string;
  description: string;
  /** Path relative to the repository root, for messages and the ledger. */
  path: string;
  content: string;
  checksum: string;
  /** False when the file carries the `no-transaction` marker. */
  transactional: boolean;
}

export interface AssetSource {
  engine: EngineName;
  /** The engine's folder (`databases/<engine>`). */
  directory: string;
  /** Sub-folders that hold assets, e.g. `schemas`, `indexes`. */
  folders: readonly string[];
  /** File extension of assets, e.g. `.sql`. */
  extension: string;
  /** Paths in messages are relative to this folder (the repository root). */
  root: string;
  /** False for engines without transactional DDL (ClickHouse): no asset runs in a transaction. */
  transactions?: boolean;
}

/** A first line `-- allixios:no-transaction` (or `// ...`) marks an asset that must run outside a transaction. */
export const NO_TRANSACTION_MARKER = /^\s*(--|\/\/)\s*allixios:no-transaction\b/;

const VERSIONED = /^V(\d+)__([A-Za-z0-9][A-Za-z0-9_.-]*)$/;
const REPEATABLE = /^R__([A-Za-z0-9][A-Za-z0-9_.-]*)$/;

export function loadAssets(source: AssetSource): Asset[] {
  const assets: Asset[] = [];
  for (const folder of source.folders) {
    const directory = join(source.directory, folder);
    let entries: Dirent[];
    try {
      // With file types: no stat call per file, which a long history would pay on every run.
      entries = readdirSync(directory, { withFileTypes: true });
    } catch {
      continue; // A folder the engine does not use yet.
    }
    for (const name of entries.filter((entry) => entry.isFile()).map((entry) => entry.name).sort()) {
      const file = join(directory, name);
      if (!name.endsWith(source.extension)) continue;
      const path = relative(source.root, file);
      const stem = name.slice(0, -source.extension.length);
      const versioned = VERSIONED.exec(stem);
      const repeatable = REPEATABLE.exec(stem);
      if (!versioned && !repeatable) {
        throw new BootstrapError(
          source.engine,
          `expected an asset name like V0001__description${source.extension} or R__description${source.extension}, got "${name}"`,
          { file: path },
        );
      }
      const content = readFileSync(file, 'utf8');
      assets.push({
        engine: source.engine,
        kind: versioned ? 'versioned' : 'repeatable',
        ...(versioned ? { version: Number(versioned[1]) } : {}),
        name,
        description: (versioned?.[2] ?? repeatable![1]!).replaceAll('_', ' '),
        path,
        content,
        checksum: checksum(content),
        transactional: (source.transactions ?? true) && !NO_TRANSACTION_MARKER.test(content.split(/\r?\n/, 1)[0] ?? ''),
      });
    }
  }
  checkUnique(source.engine, assets);
  return sortAssets(assets);
}

function checkUnique(engine: EngineName, assets: readonly Asset[]): void {
  const seen = new Map<string, Asset>();
  for (const asset of assets) {
    const key = asset.kind === 'versioned' ? `version ${asset.version}` : `repeatable ${asset.name}`;
    const other = seen.get(key);
    if (other) throw new BootstrapError(engine, `${key} is defined twice: ${other.path} and ${asset.path}`, { file: asset.path });
    seen.set(key, asset);
  }
}

/** Versioned by version, then repeatable by name: the order they are applied in. */
export function sortAssets(assets: readonly Asset[]): Asset[] {
  const versioned = assets.filter((asset) => asset.kind === 'versioned').sort((a, b) => a.version! - b.version!);
  const repeatable = assets.filter((asset) => asset.kind === 'repeatable').sort((a, b) => a.name.localeCompare(b.name));
  return [...versioned, ...repeatable];
}

/** `V0001` or `R__name.sql`: how an asset is named in messages. */
export function assetLabel(asset: Pick<Asset, 'kind' | 'version' | 'name'>): string {
  return asset.kind === 'versioned' ? `V${String(asset.version).padStart(4, '0')}` : asset.name;
}
