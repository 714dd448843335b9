/**
 * ClickHouse for tests: a chdb-backed client (the ClickHouse engine in-process, see ENGINES.md)
 * and a plain applier of the engine's assets, until the bootstrap has a ClickHouse adapter.
 *
 * The applier does what the adapter will do minus the ledger: assets in the bootstrap's order
 * (versioned by number, then repeatable by name), each split into statements, each statement
 * sent on its own. ClickHouse DDL is not transactional, so a failure leaves the statements
 * before it applied; the assets are written so that running them again resumes.
 */
import { relative } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { loadAssets, type Asset } from '../../bootstrap/assets.ts';
import { BootstrapError, toError } from '../../bootstrap/errors.ts';
import { applyAssets } from '../../bootstrap/apply.ts';
import { REPOSITORY_ROOT } from '../../bootstrap/runner.ts';
import { CLICKHOUSE, splitStatements, type Statement } from '../../bootstrap/sql.ts';
import { clickhouse } from '../../databases/clickhouse/index.ts';

export { CLICKHOUSE } from '../../bootstrap/sql.ts';
export { startChdb, type ChdbEngine } from '../../bootstrap/embedded/clickhouse.ts';

/** The folders under databases/clickhouse that hold assets. */
export const CLICKHOUSE_ASSET_FOLDERS = ['schemas'] as const;

/** The ClickHouse assets of `directory` (the engine's folder by default), in the order they apply. */
export function loadClickHouseAssets(directory: string = clickhouse.directory): Asset[] {
  const root = relative(REPOSITORY_ROOT, directory).startsWith('..') ? directory : REPOSITORY_ROOT;
  return loadAssets({ engine: 'clickhouse', directory, root, folders: CLICKHOUSE_ASSET_FOLDERS, extension: '.sql' });
}

export interface AssetStatement {
  asset: Asset;
  statement: Statement;
}

/** Every statement of `assets`, in the order they run. */
export function assetStatements(assets: readonly Asset[]): AssetStatement[] {
  return assets.flatMap((asset) => splitStatements(asset.content, CLICKHOUSE).map((statement) => ({ asset, statement })));
}

/** ClickHouse's error name (UNKNOWN_TYPE, ...) when `error` comes from the engine. */
function clickHouseErrorType(error: unknown): string | undefined {
  const type = (error as { type?: unknown }).type;
  return typeof type === 'string' && type !== '' ? type : undefined;
}

/**
 * Runs `statements` one by one and stops at the first failure, with a BootstrapError naming the
 * file, the statement, its line and column, and ClickHouse's own message and error name.
 */
export async function applyStatements(client: ClickHouseClient, statements: readonly AssetStatement[]): Promise<void> {
  for (const { asset, statement } of statements) {
    try {
      await client.command({ query: statement.text });
    } catch (error) {
      throw new BootstrapError('clickhouse', toError(error).message.trim(), {
        location: { file: asset.path, statement: statement.index, line: statement.line, column: statement.column },
        code: clickHouseErrorType(error),
      });
    }
  }
}

/** Applies every asset of `directory` (the engine's folder by default) with the real bootstrap runner. */
export async function applyClickHouseAssets(client: ClickHouseClient, directory?: string): Promise<void> {
  await applyAssets(
    'clickhouse',
    { env: {}, clients: { clickhouse: client }, ...(directory ? { assetDirectories: { clickhouse: directory } } : {}) },
    { readyTimeoutMs: 5000, lockTimeoutMs: 10_000 },
  );
}
