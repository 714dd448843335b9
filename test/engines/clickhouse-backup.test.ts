/**
 * ClickHouse's backup and restore on a real ClickHouse engine: chdb (ClickHouse 26 in-process,
 * ENGINES.md) started with the very configuration a member mounts when its stack backs up
 * (`config.d/backup.xml`, the named collection `allixios_backups`, its values from the
 * environment), the project's schema (databases/clickhouse/schemas) and events, and an S3 store
 * of this process standing in for the stack's object store (bench/drills/s3-stand-in.ts).
 *
 * The statements are the jobs' own (their environment in the description), with the ids filled as
 * the job's script fills them: a full backup, more events, an incremental backup on the full one
 * found by the jobs' listing statement, then `restoreClickhouse` of the incremental into a new
 * database, compared table by table with the source at the time of the backup.
 *
 * What chdb cannot show: a user's grants (it runs every query as its own default user, whatever
 * users a configuration defines), clickhouse-client and clickhouse-local as processes (the job's
 * script is run with stand-ins in test/clickhouse-backup.test.ts), a replicated stack.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackupSettings } from '../../databases/backup.ts';
import { BACKUP_ENV, objectStoreUrl } from '../../databases/clickhouse/backup.ts';
import { clickhouse } from '../../databases/clickhouse/index.ts';
import { latestClickhouseBackup, restoreClickhouse } from '../../databases/clickhouse/restore.ts';
import { engineSpec } from '../../databases/engine.ts';
import { startChdbWithConfig, tableCounts, writeEvents } from '../../bench/drills/clickhouse-events.ts';
import { startFakeS3, type FakeS3 } from '../../bench/drills/s3-stand-in.ts';
import { applyClickHouseAssets } from '../support/clickhouse.ts';

const ACCESS_KEY_ID = 'AKIAALLIXIOSBACKUPTEST';
const SECRET_ACCESS_KEY = 'backup-secret-access-key-0123456789';

let s3: FakeS3;
let client: ClickHouseClient;
let directory: string;
let backup: BackupSettings;

/** The jobs as a prod stack with a Secret's keys describes them. */
function jobs() {
  const sizing = clickhouse.sizing.prod;
  const spec = engineSpec(clickhouse, {
    environment: 'prod',
    version: clickhouse.defaultVersion,
    replicas: 1,
    storage: sizing.storage,
    resources: sizing.resources,
    options: clickhouse.optionsSchema.parse({}),
    tls: false,
    backup,
  });
  const job = (name: string) => spec.backup!.jobs.find((candidate) => candidate.name === name)!;
  return { spec, full: job('full'), incremental: job('incremental') };
}

/** The job script's substitution: `{id}` and `{base}` in the statement of the job's environment. */
function statement(template: unknown, values: { id: string; base?: string }): string {
  return String(template)
    .replaceAll('{id}', values.id)
    .replaceAll('{base}', values.base ?? '');
}

async function rows<Row>(query: string): Promise<Row[]> {
  return (await client.query({ query, format: 'JSONEachRow' })).json<Row>();
}

const counts = (database: string) => tableCounts(client, database);

beforeAll(async () => {
  s3 = await startFakeS3({ accessKeyId: ACCESS_KEY_ID });
  backup = {
    objectStore: {
      endpoint: s3.endpoint,
      bucket: 'backups',
      prefix: 'test',
      region: 'eu-west-1',
      forcePathStyle: true,
      credentials: { kind: 'secret', secretName: 'backups', accessKeyIdKey: 'id', secretAccessKeyKey: 'key' },
    },
    path: 'test/clickhouse',
    schedules: { full: '0 3 * * 0', incremental: '0 3 * * 1-6' },
    retention: { count: 4, days: 35 },
  };
  // What the target puts in a member's environment: the URL as described, the keys from the Secret.
  const { spec } = jobs();
  const memberEnv = spec.backup!.memberEnv!;
  process.env[BACKUP_ENV.url] = String(memberEnv[BACKUP_ENV.url]);
  process.env[BACKUP_ENV.accessKeyId] = ACCESS_KEY_ID;
  process.env[BACKUP_ENV.secretAccessKey] = SECRET_ACCESS_KEY;
  // The member's configuration file, exactly as the description ships it.
  directory = mkdtempSync(join(tmpdir(), 'allixios-clickhouse-backup-'));
  const configFile = join(directory, 'backup.xml');
  writeFileSync(configFile, spec.configFiles.find((file) => file.mountPath.endsWith('/config.d/backup.xml'))!.content!);
  // libchdb binds one engine per process: the session with the configuration starts it, the client shares it.
  client = startChdbWithConfig(join(directory, 'data'), configFile);
  await applyClickHouseAssets(client);
  await writeEvents(client, 20_000, 0);
}, 120_000);

afterAll(async () => {
  await client?.close();
  await s3?.close();
  if (directory) rmSync(directory, { recursive: true, force: true });
});

describe('BACKUP to the store through the named collection', () => {
  let full: string;
  let incremental: string;
  let atIncremental: Record<string, number>;

  it('writes the full backup under the engine’s prefix, signed with the store’s key from the environment, with no credential in any statement', async () => {
    const { full: job } = jobs();
    expect(objectStoreUrl(backup.objectStore, backup.path)).toBe(`${s3.endpoint}/backups/test/clickhouse/`);
    full = 'full/20261206T030000Z';
    const [result] = await rows<{ status: string }>(statement(job.env.CLICKHOUSE_BACKUP_FULL_SQL, { id: full }));
    expect(result!.status).toBe('BACKUP_CREATED');
    expect(s3.objects.has(`backups/test/clickhouse/${full}/.backup`)).toBe(true);
    expect([...s3.objects.keys()].filter((key) => key.includes('/data/allixios/user_events/')).length).toBeGreaterThan(0);
    // Every request signed by the key the environment gave the configuration
    expect(new Set(s3.signers)).toEqual(new Set([ACCESS_KEY_ID]));
    // What ClickHouse records of the backup names the collection, never a key
    const recorded = JSON.stringify(await rows('SELECT name, error FROM system.backups'));
    expect(recorded).toContain(`S3(allixios_backups, '${full}')`);
    expect(recorded).not.toContain(SECRET_ACCESS_KEY);
    expect(recorded).not.toContain(ACCESS_KEY_ID);
    // The collection of the member's configuration, its values hidden from queries
    const [collection] = await rows<{ name: string; collection: Record<string, string> }>("SELECT name, collection FROM system.named_collections WHERE name = 'allixios_backups'");
    expect(Object.keys(collection!.collection).sort()).toEqual(['access_key_id', 'no_sign_request', 'secret_access_key', 'url', 'use_environment_credentials']);
    expect(JSON.stringify(collection)).not.toContain(SECRET_ACCESS_KEY);
  });

  it('finds the latest complete full backup, ignoring one cut short (no .backup yet) and names that are not ids', async () => {
    const { incremental: job } = jobs();
    s3.objects.set('backups/test/clickhouse/full/20991231T000000Z/data/allixios/x.bin', Buffer.from('a backup cut short'));
    s3.objects.set("backups/test/clickhouse/full/99999999T999999Z'); DROP DATABASE allixios; --/.backup", Buffer.from('x'));
    const [found] = await rows<Record<string, string>>(String(job.env.CLICKHOUSE_BACKUP_LATEST_FULL_SQL));
    expect(Object.values(found!)).toEqual([full]);
    for (const key of [...s3.objects.keys()]) if (key.includes('20991231T000000Z') || key.includes('DROP')) s3.objects.delete(key);
  });

  it('writes an incremental backup on it that holds only what changed', async () => {
    await writeEvents(client, 5_000, 20_000);
    atIncremental = await counts('allixios');
    const { incremental: job } = jobs();
    incremental = 'incremental/20261207T030000Z';
    const [result] = await rows<{ status: string }>(statement(job.env.CLICKHOUSE_BACKUP_INCREMENTAL_SQL, { id: incremental, base: full }));
    expect(result!.status).toBe('BACKUP_CREATED');
    const bytes = (prefix: string) =>
      [...s3.objects.entries()].filter(([key]) => key.startsWith(`backups/test/clickhouse/${prefix}/`)).reduce((sum, [, value]) => sum + value.length, 0);
    // The unchanged parts are the base's: the incremental backup stores a fraction of the full one
    expect(bytes(incremental)).toBeLessThan(bytes(full) / 2);
    expect(await latestClickhouseBackup(client)).toBe(incremental);
  });

  it('refuses a query that points the collection at another host', async () => {
    await expect(rows("BACKUP DATABASE allixios TO S3(allixios_backups, 'x', url = 'http://127.0.0.1:1/elsewhere/')")).rejects.toThrow(/Override not allowed for 'url'/);
    await expect(rows("BACKUP DATABASE allixios TO S3(allixios_backups, 'x', access_key_id = 'other')")).rejects.toThrow(/Override not allowed for 'access_key_id'/);
  });

  describe('restoreClickhouse', () => {
    it('plans without changing anything, and refuses a target that exists, naming it', async () => {
      const planned = await restoreClickhouse({ client, backup: incremental });
      expect(planned.executed).toBe(false);
      expect(planned.plan[0]).toContain('create the database allixios_restored_20261207t030000z');
      expect(planned.plan[1]).toBe(
        `RESTORE DATABASE allixios AS allixios_restored_20261207t030000z FROM S3(allixios_backups, '${incremental}') (and its base, the full backup it was taken on, which ClickHouse reads by itself): tables with new UUIDs, views renamed to allixios_restored_20261207t030000z`,
      );
      expect(await rows("SELECT name FROM system.databases WHERE name LIKE 'allixios_restored%'")).toEqual([]);

      await client.command({ query: 'CREATE DATABASE taken' });
      await client.command({ query: 'CREATE TABLE taken.t (x UInt8) ENGINE = MergeTree ORDER BY x' });
      await expect(restoreClickhouse({ client, backup: incremental, targetDatabase: 'taken', execute: true })).rejects.toThrow(
        "clickhouse restore: the target database taken already exists (Atomic, 1 tables): a restore goes into a new database, never over one; choose another name (or drop it yourself if it is a failed restore's)",
      );
      await expect(restoreClickhouse({ client, backup: incremental, targetDatabase: 'allixios' })).rejects.toThrow('the target database is allixios, the live one');
      await expect(restoreClickhouse({ client, backup: "full/x'); DROP DATABASE allixios; --" })).rejects.toThrow(
        /expected a backup id such as full\/20261208T030000Z or incremental\/20261209T030000Z/,
      );
      expect(await counts('taken')).toEqual({ t: 0 });
    });

    it('restores the incremental backup with its base into a new database: every table as it was at the backup, views renamed to it', async () => {
      // Events after the backup: in the live tables, not in the backup
      await writeEvents(client, 1_000, 30_000);
      const result = await restoreClickhouse({ client, backup: incremental, targetDatabase: 'allixios_restored', execute: true });
      const figures = result.figures!;
      expect(Object.fromEntries(figures.tables.map((table) => [table.name, table.rowsRestored]))).toEqual(atIncremental);
      expect(figures.tables.every((table) => table.rowsInBackup === table.rowsRestored)).toBe(true);
      expect(figures.rows).toBeGreaterThan(25_000);
      expect(await counts('allixios_restored')).toEqual(atIncremental);
      // The materialized views and the dashboards' views are there, reading the restored tables
      const live = await rows<{ name: string }>("SELECT name FROM system.tables WHERE database = 'allixios' AND engine IN ('View', 'MaterializedView') ORDER BY name");
      expect(figures.views).toEqual(live.map((row) => row.name));
      const definitions = await rows<{ create_table_query: string }>(
        "SELECT create_table_query FROM system.tables WHERE database = 'allixios_restored' AND engine IN ('View', 'MaterializedView')",
      );
      for (const { create_table_query: query } of definitions) expect(query).not.toMatch(/\ballixios\./);
      // New UUIDs: a restored replicated table would get Keeper paths of its own
      const uuids = await rows<{ database: string; uuid: string }>(
        "SELECT database, toString(uuid) AS uuid FROM system.tables WHERE database IN ('allixios', 'allixios_restored') AND name = 'user_events'",
      );
      expect(new Set(uuids.map((row) => row.uuid)).size).toBe(2);
      // The verification's read-only view of the backup is gone
      expect(await rows("SELECT name FROM system.databases WHERE name LIKE '%backup_view%'")).toEqual([]);
    }, 120_000);

    it('brings lost rows back into the live table with ATTACH PARTITION FROM the restored one, without counting them twice in the rollups', async () => {
      // Given revenue events lost from the live table
      const before = await counts('allixios_restored');
      const rollupBefore = (await counts('allixios')).revenue_daily_agg;
      await client.command({ query: 'TRUNCATE TABLE allixios.revenue_events' });
      // When the restored table's partitions are attached to it (the runbook)
      const partitions = await rows<{ partition_id: string }>(
        "SELECT DISTINCT partition_id FROM system.parts WHERE database = 'allixios_restored' AND table = 'revenue_events' AND active",
      );
      for (const { partition_id: id } of partitions) {
        await client.command({ query: `ALTER TABLE allixios.revenue_events ATTACH PARTITION ID '${id}' FROM allixios_restored.revenue_events` });
      }
      // Then the backup's rows are back, and no materialized view fired on them
      expect((await counts('allixios')).revenue_events).toBe(before.revenue_events);
      expect((await counts('allixios')).revenue_daily_agg).toBe(rollupBefore);
    });
  });
});
