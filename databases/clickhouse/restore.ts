/**
 * Restoring ClickHouse from a backup of the jobs (backup.ts; databases/clickhouse/README.md,
 * "Backups and restore"), as a library function the `npm run restore` command calls with a client
 * of the stack's server as allixios_admin: plan first (human-readable steps, returned), then, only
 * when told, ClickHouse's own RESTORE into a database that does not exist yet, verified table by
 * table against the backup itself.
 *
 * - **A new database, never the live one.** `RESTORE DATABASE allixios AS <target>`; a target that
 *   exists is refused by name, before anything is done. The target is created first as an
 *   `Atomic` database on the member the client reached (`allow_different_database_def`): the
 *   backup's definition of a replicated stack's database is `Replicated` on the live database's
 *   Keeper path, which a copy must never join. Its tables get new UUIDs (RESTORE's default), so
 *   a restored `Replicated*MergeTree` has Keeper paths of its own. Views and materialized views
 *   are restored with their references renamed to the target; restoring attaches parts, so no
 *   materialized view counts anything twice.
 * - **Verified against the backup**, not against the live tables, which moved on: the backup is
 *   opened read-only as a database of engine `Backup` and each table's row count there is compared
 *   with the restored table's.
 * - An incremental backup is restored with its base, which ClickHouse reads by itself (the base's
 *   location is inside the incremental backup).
 */
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import type { EngineRestore, RestorePlan, RestoreRequest } from '../backup.ts';
import { BACKUP_DATABASE, BACKUP_STATEMENTS, backupLocation } from './backup.ts';

export interface ClickhouseRestoreOptions {
  /** A client of the server to restore on, as allixios_admin (the stack's admin URL). */
  client: ClickHouseClient;
  /** The backup's id: `full/<time>` or `incremental/<time>` (`latestClickhouseBackup` finds the latest). */
  backup: string;
  /**
   * Where the backup is, as ClickHouse's backup destination (default: `S3(allixios_backups, '<id>')`,
   * the store of the stack's named collection). Tests give `File('<directory>/<id>')`.
   */
  location?: (id: string) => string;
  /** The database to restore into, which must not exist (default `allixios_restored_<time of the backup>`). */
  targetDatabase?: string;
  /** Run the steps (default false: only the plan is returned). */
  execute?: boolean;
  /** Progress lines while it executes (default: none). */
  log?: (line: string) => void;
}

export interface RestoredTable {
  name: string;
  engine: string;
  /** Rows in the backup (read through a `Backup` database), and in the restored table. */
  rowsInBackup: number;
  rowsRestored: number;
}

export interface ClickhouseRestoreFigures {
  backup: string;
  targetDatabase: string;
  /** Every table with data (the MergeTree family), by name. */
  tables: RestoredTable[];
  /** Views and materialized views restored beside them. */
  views: string[];
  rows: number;
  seconds: { restore: number; verify: number; total: number };
}

export interface ClickhouseRestoreResult {
  engine: 'clickhouse';
  plan: string[];
  executed: boolean;
  figures?: ClickhouseRestoreFigures;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const errorOf = (message: string) => new Error(`clickhouse restore: ${message}`);
const quote = (value: string) => `'${value.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;

/** The latest complete backup in the store, as the server sees it through the named collection; undefined when there is none. */
export async function latestClickhouseBackup(client: ClickHouseClient): Promise<string | undefined> {
  const result = await client.query({ query: BACKUP_STATEMENTS.latest, format: 'TabSeparated' });
  const id = (await result.text()).trim();
  return id === '' ? undefined : id;
}

async function rows<Row>(client: ClickHouseClient, query: string, params: Record<string, unknown> = {}): Promise<Row[]> {
  return (await client.query({ query, format: 'JSONEachRow', query_params: params })).json<Row>();
}

interface ResolvedPlan {
  backup: string;
  location: string;
  target: string;
  steps: string[];
}

/** The plan: checks the names and that the target does not exist, and says what will be done. */
export async function planClickhouseRestore(options: ClickhouseRestoreOptions): Promise<ResolvedPlan> {
  const location = (options.location ?? backupLocation)(options.backup);
  const stamp = /(\d{8}T\d{6}Z)$/.exec(options.backup)?.[1]?.toLowerCase();
  const target = options.targetDatabase ?? `allixios_restored_${stamp ?? 'backup'}`;
  if (!IDENTIFIER.test(target)) throw errorOf(`the target database: expected a name of letters, digits and "_", got ${JSON.stringify(target)}`);
  if (target === BACKUP_DATABASE) throw errorOf(`the target database is ${BACKUP_DATABASE}, the live one: a restore goes into a new database; choose another name`);
  const existing = await rows<{ name: string; engine: string; tables: string }>(
    options.client,
    'SELECT name, engine, toString((SELECT count() FROM system.tables WHERE database = {name:String})) AS tables FROM system.databases WHERE name = {name:String}',
    { name: target },
  );
  if (existing.length > 0) {
    throw errorOf(
      `the target database ${target} already exists (${existing[0]!.engine}, ${existing[0]!.tables} tables): a restore goes into a new database, never over one; choose another name (or drop it yourself if it is a failed restore's)`,
    );
  }
  const steps = [
    `create the database ${target} (Atomic, on the member this client reached): it must not exist, and a copy never joins the live database's replication`,
    `RESTORE DATABASE ${BACKUP_DATABASE} AS ${target} FROM ${location}${options.backup.startsWith('incremental/') ? ' (and its base, the full backup it was taken on, which ClickHouse reads by itself)' : ''}: tables with new UUIDs, views renamed to ${target}`,
    `verify: open the backup read-only (a database of engine Backup), compare each table's row count there with ${target}'s, drop that read-only database`,
    `leave ${target} for the operator: compare it, then bring tables back (ALTER TABLE ${BACKUP_DATABASE}.<table> ATTACH PARTITION ... FROM ${target}.<table>), or drop it`,
  ];
  return { backup: options.backup, location, target, steps };
}

/**
 * Plans a restore and, with `execute`, runs it: see the module's comment. Throws when a table's
 * rows differ from the backup's, leaving the target for inspection.
 */
export async function restoreClickhouse(options: ClickhouseRestoreOptions): Promise<ClickhouseRestoreResult> {
  const plan = await planClickhouseRestore(options);
  if (!options.execute) return { engine: 'clickhouse', plan: plan.steps, executed: false };
  const { client } = options;
  const log = options.log ?? (() => {});
  const started = performance.now();
  const seconds = (from: number) => Math.round(performance.now() - from) / 1000;

  await client.command({ query: `CREATE DATABASE ${plan.target} ENGINE = Atomic` });
  let phase = performance.now();
  try {
    await client.query({
      query: `RESTORE DATABASE ${BACKUP_DATABASE} AS ${plan.target} FROM ${plan.location} SETTINGS allow_different_database_def = 1`,
      format: 'JSONEachRow',
    });
  } catch (error) {
    throw errorOf(`RESTORE of ${plan.backup} into ${plan.target} failed (the database is left as it is: drop it before another try): ${(error as Error).message.trim()}`);
  }
  const restore = seconds(phase);
  log(`restored ${plan.backup} into ${plan.target} in ${restore} s`);

  phase = performance.now();
  const view = `${plan.target}_backup_view`;
  const tables = await rows<{ name: string; engine: string }>(
    client,
    "SELECT name, engine FROM system.tables WHERE database = {db:String} AND engine LIKE '%MergeTree' ORDER BY name",
    { db: plan.target },
  );
  const views = (
    await rows<{ name: string }>(client, "SELECT name FROM system.tables WHERE database = {db:String} AND engine IN ('View', 'MaterializedView') ORDER BY name", {
      db: plan.target,
    })
  ).map((row) => row.name);
  const counted: RestoredTable[] = [];
  await client.command({ query: `CREATE DATABASE ${view} ENGINE = Backup(${quote(BACKUP_DATABASE)}, ${plan.location})` });
  try {
    const inBackup = new Set((await rows<{ name: string }>(client, 'SELECT name FROM system.tables WHERE database = {db:String}', { db: view })).map((row) => row.name));
    for (const table of tables) {
      if (!inBackup.has(table.name)) throw errorOf(`${plan.target}.${table.name} is not a table of the backup ${plan.backup}`);
      const [restored] = await rows<{ c: string }>(client, `SELECT count() AS c FROM ${plan.target}.${table.name}`);
      const [backedUp] = await rows<{ c: string }>(client, `SELECT count() AS c FROM ${view}.${table.name}`);
      counted.push({ name: table.name, engine: table.engine, rowsInBackup: Number(backedUp!.c), rowsRestored: Number(restored!.c) });
    }
    const missing = [...inBackup].filter((name) => !tables.some((table) => table.name === name));
    if (missing.length > 0) throw errorOf(`tables of the backup ${plan.backup} missing in ${plan.target}: ${missing.join(', ')}`);
  } finally {
    await client.command({ query: `DROP DATABASE IF EXISTS ${view}` });
  }
  const verify = seconds(phase);
  const different = counted.filter((table) => table.rowsInBackup !== table.rowsRestored);
  if (different.length > 0) {
    throw errorOf(
      `${plan.target} does not hold the backup ${plan.backup}'s rows: ${different.map((table) => `${table.name} ${table.rowsRestored} restored, ${table.rowsInBackup} in the backup`).join('; ')}`,
    );
  }
  const total = counted.reduce((sum, table) => sum + table.rowsRestored, 0);
  log(`verified in ${verify} s: ${counted.length} tables, ${total} rows, as in the backup`);
  return {
    engine: 'clickhouse',
    plan: plan.steps,
    executed: true,
    figures: { backup: plan.backup, targetDatabase: plan.target, tables: counted, views, rows: total, seconds: { restore, verify, total: seconds(started) } },
  };
}

/**
 * ClickHouse's restore as `npm run restore` calls it (databases/backup.ts, EngineRestore): into a
 * new database of the server the engine's URL names (CLICKHOUSE_URL, as allixios_admin), from the
 * store of that server's named collection (the stack's own server, or one configured the same),
 * the latest backup unless `--backup` names one; `--from <directory>` restores a local copy the
 * server may read (`backups.allowed_path`): {@link restoreClickhouse}.
 */
export function clickhouseEngineRestore(): EngineRestore {
  return {
    async plan(request: RestoreRequest): Promise<RestorePlan> {
      if (!request.url) throw errorOf('CLICKHOUSE_URL: expected the admin URL (allixios_admin) of the server to restore on, got none');
      if (request.to)
        throw errorOf('--to: a ClickHouse backup is a nightly full or incremental backup, not a point in time; name one with --backup <id> (full/<time> or incremental/<time>)');
      if (request.replaceExisting)
        throw errorOf(
          '--replace-existing: a database is never written over; restore beside it and move the partitions you need (databases/clickhouse/README.md, "Backups and restore")',
        );
      const { createClient } = await import('@clickhouse/client');
      const { clickhouseClientOptions } = await import('../../bootstrap/adapters/clickhouse-adapter.ts');
      const url = request.url;
      const source = request.source;
      const location = source !== undefined ? { location: (id: string) => `File(${quote(join(source, id))})` } : {};
      // One client per phase: a dry run leaves no connection open behind it.
      const client = createClient(clickhouseClientOptions(url));
      let backup: string | undefined;
      let plan: string[];
      try {
        backup = request.backup ?? (source === undefined ? await latestClickhouseBackup(client) : undefined);
        if (backup === undefined) {
          throw errorOf(
            source === undefined
              ? 'no backup listed in the store of the named collection: nothing to restore'
              : '--backup: expected the id of the backup under --from (full/<time> or incremental/<time>), got none',
          );
        }
        plan = (await restoreClickhouse({ client, backup, targetDatabase: request.target, ...location })).plan;
      } finally {
        await client.close();
      }
      const chosen = backup;
      return {
        steps: plan,
        execute: async (log) => {
          const executing = createClient(clickhouseClientOptions(url));
          try {
            const { figures } = await restoreClickhouse({ client: executing, backup: chosen, targetDatabase: request.target, ...location, execute: true, log });
            return { database: figures!.targetDatabase, backup: figures!.backup, tables: figures!.tables.length, rows: figures!.rows, views: figures!.views.length };
          } finally {
            await executing.close();
          }
        },
      };
    },
  };
}
