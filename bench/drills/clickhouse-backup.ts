/**
 * `npm run drill:clickhouse-backup`: ClickHouse's backup and restore on a real ClickHouse engine
 * (chdb, ClickHouse 26 in-process), started with the configuration a member mounts when its stack
 * backs up (the named collection `allixios_backups`, its URL and keys from the environment), the
 * project's schema, and an in-memory S3 of this process standing in for the object store
 * (`bench/drills/s3-stand-in.ts`; it records who signed each request).
 *
 * 1. events into the raw tables (the materialized views fill the rollups); the full backup job's
 *    statement;
 * 2. a tenth more events; the incremental job's listing statement finds the full backup, and its
 *    statement writes the incremental backup on it;
 * 3. `restoreClickhouse` of the incremental backup into a new database, verified by it against the
 *    backup, and compared here with the tables as they were at the incremental backup.
 *
 * Writes a JSON report (bench/results/clickhouse-backup-drill-<time>.json, or --out) and prints a
 * table. Exit 1 when a restored table's rows differ from the source's at the backup, a request is
 * signed with another key, or a bound is exceeded; the figures themselves are reported, not asserted.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { defineCommand } from '../../bootstrap/command-line.ts';
import { applyAssets } from '../../bootstrap/apply.ts';
import type { BackupSettings } from '../../databases/backup.ts';
import { BACKUP_ENV } from '../../databases/clickhouse/backup.ts';
import { clickhouse } from '../../databases/clickhouse/index.ts';
import { restoreClickhouse } from '../../databases/clickhouse/restore.ts';
import { engineSpec } from '../../databases/engine.ts';
import { startChdbWithConfig, tableCounts, writeEvents } from './clickhouse-events.ts';
import { finishDrill, startDrill, stopOnExit } from './drill-run.ts';
import { startFakeS3, type FakeS3 } from './s3-stand-in.ts';

const command = defineCommand({
  name: 'drill:clickhouse-backup',
  synopsis: ['npm run drill:clickhouse-backup -- [options]'],
  summary:
    'Runs ClickHouse (chdb) with the configuration a member of a backed-up stack mounts and the project’s schema, takes the full and the incremental backup jobs’ statements to an in-memory S3, restores the incremental backup with restoreClickhouse into a new database and compares every table.',
  options: {
    out: { type: 'string', value: '<file>', description: 'where to write the JSON report (default bench/results/clickhouse-backup-drill-<time>.json)' },
    events: {
      type: 'string',
      value: '<n>',
      description: 'user events before the full backup (default 5000000; a quarter as many API requests, a twentieth as many revenue events)',
    },
  },
  notes: 'Needs nothing but npm’s chdb: the object store is a stand-in in this process.',
  exitCodes: {
    ok: 'every restored table holds the rows its source had at the incremental backup, and every request to the store was signed with the configured key, within the bounds',
    failed: 'a restored table differs, a request was signed otherwise, or a bound was exceeded',
  },
});
const { values } = command.parse();
const EVENTS = Number(values.events ?? 5_000_000);
if (!Number.isInteger(EVENTS) || EVENTS < 100) command.fail(`--events expects a whole number of at least 100, got ${JSON.stringify(values.events)}`);

const BOUNDS = { fullSeconds: 120, incrementalSeconds: 120, restoreSeconds: 120 };
const started = performance.now();
const run = startDrill(BOUNDS);
const { seconds, log, report, failures } = run;

const ACCESS_KEY_ID = 'AKIAALLIXIOSDRILL';
const directory = mkdtempSync(join(tmpdir(), 'allixios-clickhouse-backup-drill-'));
let s3: FakeS3 | undefined;
let client: ClickHouseClient | undefined;
stopOnExit(
  run,
  async () => {
    await client?.close().catch(() => {});
    await s3?.close().catch(() => {});
  },
  () => removeDirectory(directory),
);

/**
 * The drill's directory, removed at the end: chdb's engine runs in this process and its background
 * threads may still be writing parts there (merges) when the drill is done, so the removal is
 * retried and, failing that, reported rather than failing a drill that passed.
 */
function removeDirectory(path: string): void {
  try {
    rmSync(path, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
  } catch (error) {
    process.stderr.write(`clickhouse-backup drill: could not remove ${path} (${(error as Error).message}); remove it by hand\n`);
  }
}

const storedBytes = (store: FakeS3, id: string) =>
  [...store.objects.entries()].filter(([key]) => key.includes(`/clickhouse/${id}/`)).reduce((sum, [, value]) => sum + value.length, 0);

try {
  const store = await startFakeS3({ accessKeyId: ACCESS_KEY_ID });
  s3 = store;
  const backup: BackupSettings = {
    objectStore: {
      endpoint: store.endpoint,
      bucket: 'backups',
      prefix: 'drill',
      region: 'none',
      forcePathStyle: true,
      credentials: { kind: 'secret', secretName: 'backups', accessKeyIdKey: 'id', secretAccessKeyKey: 'key' },
    },
    path: 'drill/clickhouse',
    schedules: clickhouse.backupSchedules!,
    retention: { count: 1, days: 1 },
  };
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
  const jobs = Object.fromEntries(spec.backup!.jobs.map((job) => [job.name, job]));
  process.env[BACKUP_ENV.url] = String(spec.backup!.memberEnv![BACKUP_ENV.url]);
  process.env[BACKUP_ENV.accessKeyId] = ACCESS_KEY_ID;
  process.env[BACKUP_ENV.secretAccessKey] = 'drill-secret-access-key';
  const configFile = join(directory, 'backup.xml');
  writeFileSync(configFile, spec.configFiles.find((file) => file.mountPath.endsWith('/config.d/backup.xml'))!.content!);
  const engine = startChdbWithConfig(join(directory, 'data'), configFile);
  client = engine;
  await applyAssets('clickhouse', { env: {}, clients: { clickhouse: engine } }, { readyTimeoutMs: 5000, lockTimeoutMs: 10_000 });
  const [version] = await (await engine.query({ query: 'SELECT version() AS v', format: 'JSONEachRow' })).json<{ v: string }>();
  report.versions = { clickhouse: `${version!.v} (chdb)` };
  const query = async (sql: string) => (await engine.query({ query: sql, format: 'JSONEachRow' })).json<Record<string, string>>();

  // 1. Events, then the full backup job's statement.
  let phase = performance.now();
  await writeEvents(engine, EVENTS, 0);
  const atFull = await tableCounts(engine, 'allixios');
  report.load = { seconds: seconds(performance.now() - phase), rows: atFull };
  log(`loaded: ${JSON.stringify(atFull)}`);
  const full = 'full/20261206T030000Z';
  phase = performance.now();
  await query(String(jobs.full!.env.CLICKHOUSE_BACKUP_FULL_SQL).replaceAll('{id}', full));
  const fullSeconds = seconds(performance.now() - phase);
  report.full = { id: full, seconds: fullSeconds, bytes: storedBytes(store, full), objects: [...store.objects.keys()].filter((key) => key.includes(`/${full}/`)).length };
  log(`full backup: ${fullSeconds} s, ${storedBytes(store, full)} bytes`);

  // 2. A tenth more events; the incremental job finds the full backup and writes on it.
  await writeEvents(engine, Math.ceil(EVENTS / 10), EVENTS);
  const atIncremental = await tableCounts(engine, 'allixios');
  const [latest] = await query(String(jobs.incremental!.env.CLICKHOUSE_BACKUP_LATEST_FULL_SQL));
  const base = Object.values(latest ?? {})[0];
  if (base !== full) throw new Error(`the listing statement found ${JSON.stringify(base)}, not ${full}`);
  const incremental = 'incremental/20261207T030000Z';
  phase = performance.now();
  await query(String(jobs.incremental!.env.CLICKHOUSE_BACKUP_INCREMENTAL_SQL).replaceAll('{id}', incremental).replaceAll('{base}', base));
  const incrementalSeconds = seconds(performance.now() - phase);
  report.incremental = { id: incremental, base, seconds: incrementalSeconds, bytes: storedBytes(store, incremental) };
  log(`incremental backup: ${incrementalSeconds} s, ${storedBytes(store, incremental)} bytes`);

  // 3. The restore of the incremental backup (with its base) into a new database.
  await writeEvents(engine, 1000, 2 * EVENTS);
  phase = performance.now();
  const restored = await restoreClickhouse({ client: engine, backup: incremental, targetDatabase: 'allixios_restored', execute: true, log });
  const restoreSeconds = seconds(performance.now() - phase);
  const figures = restored.figures!;
  report.restore = { seconds: restoreSeconds, phases: figures.seconds, rows: figures.rows, tables: figures.tables, views: figures.views.length };
  const different = figures.tables.filter((table) => table.rowsRestored !== atIncremental[table.name]);
  if (different.length)
    failures.push(
      `restored tables differ from the source at the backup: ${different.map((table) => `${table.name} ${table.rowsRestored} vs ${atIncremental[table.name]}`).join('; ')}`,
    );
  const signers = [...new Set(store.signers)];
  report.store = { requests: store.requests.length, signers };
  if (signers.length !== 1 || signers[0] !== ACCESS_KEY_ID) failures.push(`requests signed by ${JSON.stringify(signers)}, expected only ${ACCESS_KEY_ID}`);
  const timings = { fullSeconds, incrementalSeconds, restoreSeconds };
  for (const [name, value] of Object.entries(timings)) {
    const bound = BOUNDS[name as keyof typeof BOUNDS];
    if (value > bound) failures.push(`${name} ${value}, over ${bound}`);
  }
  log(`restore: ${restoreSeconds} s, ${figures.rows} rows in ${figures.tables.length} tables, as at the incremental backup`);
} catch (error) {
  failures.push((error as Error).message);
  log(String((error as Error).stack));
} finally {
  await client?.close().catch(() => {});
  await s3?.close().catch(() => {});
  removeDirectory(directory);
}

finishDrill(run, {
  name: 'clickhouse-backup-drill',
  ...(values.out ? { out: values.out } : {}),
  startedAt: started,
  table: (figure) => [
    '| user events | full backup s | full bytes | incremental s | incremental bytes | restore s | rows restored | total s |',
    '|---|---|---|---|---|---|---|---|',
    `| ${EVENTS} | ${figure('full', 'seconds')} | ${figure('full', 'bytes')} | ${figure('incremental', 'seconds')} | ${figure('incremental', 'bytes')} | ${figure('restore', 'seconds')} | ${figure('restore', 'rows')} | ${report.totalSeconds} |`,
  ],
  ok: 'drill:clickhouse-backup: the incremental backup restored with its base, every table as at the backup; every request signed with the configured key',
});
