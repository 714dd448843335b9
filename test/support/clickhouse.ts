/**
 * ClickHouse for tests: a chdb-backed client (the ClickHouse engine in-process, see ENGINES.md)
 * and a plain applier of the engine's assets, until the bootstrap has a ClickHouse adapter.
 *
 * The applier does what the adapter will do minus the ledger: assets in the bootstrap's order
 * (versioned by number, then repeatable by name), each split into statements, each statement
 * sent on its own. ClickHouse DDL is not transactional, so a failure leaves the statements
 * before it applied; the assets are written so that running them again resumes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { createChdbConnection } from 'chdb/connection';
import { loadAssets, type Asset } from '../../bootstrap/assets.ts';
import { BootstrapError } from '../../bootstrap/errors.ts';
import { REPOSITORY_ROOT } from '../../bootstrap/runner.ts';
import { splitStatements, type SqlDialect, type Statement } from '../../bootstrap/sql.ts';
import { clickhouse } from '../../databases/clickhouse/index.ts';

/**
 * ClickHouse SQL: backslash escapes in strings, backtick identifiers, no dollar quoting, and a
 * backslash at the start of a line is not a psql meta-command.
 */
export const CLICKHOUSE: SqlDialect = { backslashEscapes: true, dollarQuotes: false, backticks: true, rejectMetaCommands: false };

/** The folders under databases/clickhouse that hold assets. */
export const CLICKHOUSE_ASSET_FOLDERS = ['schemas'] as const;

/**
 * chdb's connection is typed against @clickhouse/client-common 1.23.0, while @clickhouse/client
 * 1.23.1 bundles its own copy of the same declarations: one shape, two nominal types. The cast
 * bridges the copies, nothing else.
 */
type ClientConnection = NonNullable<Parameters<typeof createClient>[0]>['connection'];

export interface ChdbEngine {
  client: ClickHouseClient;
  /** Closes the client and removes the data directory. */
  close(): Promise<void>;
}

/**
 * A client on a fresh chdb data directory. libchdb binds one data directory per process, so call
 * this once per test file (vitest runs each file in its own process).
 */
export function startChdb(name: string): ChdbEngine {
  const dataDir = mkdtempSync(join(tmpdir(), `allixios-${name}-`));
  const client = createClient({ connection: createChdbConnection({ path: dataDir }) as unknown as ClientConnection });
  return {
    client,
    async close() {
      await client.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

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
      throw new BootstrapError(
        'clickhouse',
        (error as Error).message.trim(),
        { file: asset.path, statement: statement.index, line: statement.line, column: statement.column },
        clickHouseErrorType(error),
      );
    }
  }
}

/** Applies every asset of `directory` (the engine's folder by default). */
export async function applyClickHouseAssets(client: ClickHouseClient, directory?: string): Promise<void> {
  await applyStatements(client, assetStatements(loadClickHouseAssets(directory)));
}
