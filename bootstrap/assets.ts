/**
 * The assets of an engine, read from its folder under `databases/`:
 *   V<version>__<description>.<ext>  versioned: applied once, in version order, never edited after
 *   R__<description>.<ext>           repeatable: re-applied whenever its content changes, after
 *                                    every versioned asset, in file-name order
 * Nothing in an asset folder is skipped: a file with another extension (`.SQL`, `.md`), a
 * misnamed asset, a sub-folder, a broken link, each is an error naming it. Symbolic links are
 * followed (a Kubernetes ConfigMap mounts every file as one); the entries Kubernetes keeps for
 * itself in such a mount (`..data`, `..2026_...`) are the only ones passed over.
 */
import { readdirSync, readFileSync, statSync, type Dirent, type Stats } from 'node:fs';
import { join, relative } from 'node:path';
import type { EngineName } from '../databases/engine.ts';
import { checksum } from './checksum.ts';
import { BootstrapError, toError } from './errors.ts';

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
    } catch (error) {
      // A folder the engine does not use yet; anything else (not a folder, not readable) is an error.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new BootstrapError(source.engine, `cannot read the asset folder ${relative(source.root, directory)}: ${toError(error).message}`, {
        location: { file: relative(source.root, directory) },
        cause: error,
      });
    }
    for (const entry of [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const name = entry.name;
      // A ConfigMap volume's own bookkeeping: its files are links into ..data.
      if (name.startsWith('..')) continue;
      const file = join(directory, name);
      const path = relative(source.root, file);
      assertAssetFile(source, entry, file, path);
      if (!name.endsWith(source.extension)) {
        const hint = name.toLowerCase().endsWith(source.extension)
          ? ` (the extension is case-sensitive: rename it to ${name.slice(0, -source.extension.length)}${source.extension})`
          : '';
        throw new BootstrapError(
          source.engine,
          `expected only assets named like V0001__description${source.extension} or R__description${source.extension} in ${folder}/, got "${name}"${hint}`,
          { location: { file: path } },
        );
      }
      const stem = name.slice(0, -source.extension.length);
      const versioned = VERSIONED.exec(stem);
      const repeatable = REPEATABLE.exec(stem);
      if (!versioned && !repeatable) {
        throw new BootstrapError(source.engine, `expected an asset name like V0001__description${source.extension} or R__description${source.extension}, got "${name}"`, {
          location: { file: path },
        });
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

/** An entry of an asset folder must be a file to read (a regular file, or a link to one). */
function assertAssetFile(source: AssetSource, entry: Dirent, file: string, path: string): void {
  let stats: Stats | Dirent = entry;
  if (entry.isSymbolicLink()) {
    try {
      stats = statSync(file);
    } catch (error) {
      throw new BootstrapError(source.engine, `the link ${path} points at nothing readable (${(error as NodeJS.ErrnoException).code ?? toError(error).message})`, {
        location: { file: path },
        cause: error,
      });
    }
  }
  if (stats.isFile()) return;
  if (stats.isDirectory()) {
    throw new BootstrapError(source.engine, `${path} is a folder: assets sit directly in their folder, and a sub-folder would never be applied`, { location: { file: path } });
  }
  throw new BootstrapError(source.engine, `${path} is not a regular file`, { location: { file: path } });
}

function checkUnique(engine: EngineName, assets: readonly Asset[]): void {
  const seen = new Map<string, Asset>();
  for (const asset of assets) {
    const key = asset.kind === 'versioned' ? `version ${asset.version}` : `repeatable ${asset.name}`;
    const other = seen.get(key);
    if (other) throw new BootstrapError(engine, `${key} is defined twice: ${other.path} and ${asset.path}`, { location: { file: asset.path } });
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
