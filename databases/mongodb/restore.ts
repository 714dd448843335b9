/**
 * MongoDB's restore (issue 17), the library function `npm run restore -- --engine mongodb` calls:
 * `mongorestore` from one archive of the nightly dump (`backup.ts`) into a NEW database beside
 * whatever the target server holds, then a count of every restored collection with the driver.
 *
 * Plan first, then execute only when told: {@link restoreMongodb} always returns the steps it
 * would take (reading the target, writing nothing); with `execute: true` it takes them. The target
 * database must not exist or be empty: a database with a collection is refused, by name, before
 * anything is written. The password never reaches mongorestore's command line: it goes into a
 * `--config` file of a private temporary directory, removed once mongorestore has exited.
 *
 * Not drilled here: no MongoDB server runs on this machine (README.md, "Backups and restore").
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EngineRestore, ObjectStoreSpec, RestorePlan, RestoreRequest } from '../backup.ts';
import { downloadObject, listUploads } from '../object-store.ts';
import { ARCHIVE_NAME, archiveKey, DUMP_JOB } from './backup.ts';
import { MONGODB_DATABASE } from './definitions.ts';

/** What the restore reads of the target server: the driver's part, a fake in the tests. */
export interface RestoreTarget {
  /** The collections (and views) of `database`; none when it does not exist. */
  collections(database: string): Promise<string[]>;
  /** The documents of one collection, counted (not estimated). */
  countDocuments(database: string, collection: string): Promise<number>;
  /** Whether the collection has a TTL index: MongoDB may delete its documents as soon as they are restored. */
  hasTtlIndex(database: string, collection: string): Promise<boolean>;
  close(): Promise<void>;
}

export interface MongoRestoreOptions {
  /** One dump's archive on local disk: `<path>/dump/<id>/mongodb.archive` (`archiveKey` in backup.ts), or where {@link fetch} puts it. */
  archive: string;
  /** The archive is in the object store: fetched into a private temporary file when the restore executes, named by `from` in the plan. */
  fetch?: { from: string; into(file: string): Promise<void> };
  /** The target database holds collections and the operator named it twice: mongorestore drops each restored collection first (`--drop`). */
  replaceExisting?: boolean;
  /** The server to restore into, as an admin URL with its password (root, `authSource=admin`): the CLI's `--target`, never the live stack unless asked twice. */
  targetUrl: string;
  /** The new database; default `allixios_restore_<UTC yyyymmdd_hhmmss>`. */
  database?: string;
  /** The dumped database to take out of the archive (default `allixios`). */
  sourceDatabase?: string;
  /** Take the steps; without it only the plan is returned. */
  execute?: boolean;
  /** The mongorestore binary (default `mongorestore` on the PATH; the mongo image has it). */
  mongorestore?: string;
  /** The clock the default database name is made from. */
  now?: Date;
  /** How the target is read; default: the `mongodb` driver with {@link targetUrl}. */
  target?: RestoreTarget;
}

export interface MongoRestorePlan {
  archive: string;
  /** `host:port,...` of the target, without credentials. */
  server: string;
  sourceDatabase: string;
  database: string;
  /** mongorestore's arguments, as run: no password among them. */
  arguments: string[];
  /** What will be done, in order, for a person to read. */
  steps: string[];
}

export interface CollectionFigures {
  /** What mongorestore reported for it. */
  restored: number;
  failed: number;
  /** What the driver counted afterwards. */
  counted: number;
  /** Documents its TTL index removed between the restore and the count (restored - counted), allowed only there. */
  expired: number;
}

export interface MongoRestoreResult {
  plan: MongoRestorePlan;
  executed: boolean;
  /** Present once executed: mongorestore's totals, the counts per collection, the time it took. */
  figures?: { restored: number; failed: number; counted: number; collections: Record<string, CollectionFigures>; seconds: number };
}

/** MongoDB's rules for a database name (Unix), plus the system databases, which a restore never writes. */
export function checkDatabaseName(name: string, what = 'database'): void {
  if (!/^[A-Za-z0-9_-]{1,63}$/.test(name)) {
    throw new Error(`mongodb restore: ${what}: expected 1 to 63 letters, digits, "_" or "-" (MongoDB forbids /\\. "$ and more than 63 bytes), got ${JSON.stringify(name)}`);
  }
  if (['admin', 'local', 'config'].includes(name)) {
    throw new Error(`mongodb restore: ${what}: ${name} is a system database; restore into a database of its own`);
  }
}

/** `allixios_restore_20260102_013000` for 2026-01-02T01:30:00Z. */
export function defaultDatabaseName(now: Date): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '_').slice(0, 15);
  return `allixios_restore_${stamp}`;
}

interface SplitUrl {
  /** The URL without password and without database, `authSource` kept (added from the path where the URL relied on it). */
  url: string;
  password?: string;
  hosts: string;
}

/**
 * The URL mongorestore gets: the user, never the password (which goes to the `--config` file), and
 * no database in the path: mongorestore reads a database there as `--db`, which would restore only
 * that database of the archive, under its own name. A URL that authenticated against its path's
 * database keeps doing so through `authSource`.
 */
export function splitTargetUrl(url: string): SplitUrl {
  const match = /^(mongodb(?:\+srv)?:\/\/)(?:([^@/?]*)@)?([^/?]+)(?:\/([^?]*))?(?:\?(.*))?$/.exec(url);
  if (!match) throw new Error('mongodb restore: the target URL: expected mongodb://[user[:password]@]host[:port][,host...][/database][?options]');
  const [, scheme, userinfo, hosts, path, query] = match;
  const colon = userinfo?.indexOf(':') ?? -1;
  const user = userinfo === undefined ? undefined : colon >= 0 ? userinfo.slice(0, colon) : userinfo;
  const password = userinfo !== undefined && colon >= 0 ? decodeURIComponent(userinfo.slice(colon + 1)) : undefined;
  const parameters = new URLSearchParams(query ?? '');
  const database = path ? decodeURIComponent(path) : '';
  if (database && ![...parameters.keys()].some((key) => key.toLowerCase() === 'authsource')) parameters.set('authSource', database);
  const rest = parameters.toString();
  return { url: `${scheme}${user !== undefined ? `${user}@` : ''}${hosts}/${rest ? `?${rest}` : ''}`, ...(password !== undefined ? { password } : {}), hosts: hosts! };
}

/**
 * mongorestore's arguments for one archive into `database`:
 * - `--nsInclude=<source>.*`: only the platform's database, never `admin` (its users and roles,
 *   which would overwrite the target's) nor anything else the whole-instance dump holds;
 * - `--nsFrom`/`--nsTo`: renamed into the new database;
 * - `--stopOnError`: a refused document stops the restore rather than leaving a silent gap;
 * - no `--oplogReplay`: mongorestore refuses it with includes and with renames ("cannot use
 *   --oplogReplay with namespace renames specified"), so a restore beside the live data holds each
 *   collection as the dump read it; see README.md for the whole-set restore that replays it;
 * - no `--drop`: the target is new and empty, checked before.
 */
export function restoreArguments(options: { archive: string; url: string; configFile: string; sourceDatabase: string; database: string; drop?: boolean }): string[] {
  return [
    `--uri=${options.url}`,
    `--config=${options.configFile}`,
    `--archive=${options.archive}`,
    '--gzip',
    `--nsInclude=${options.sourceDatabase}.*`,
    `--nsFrom=${options.sourceDatabase}.*`,
    `--nsTo=${options.database}.*`,
    '--stopOnError',
    ...(options.drop ? ['--drop'] : []),
  ];
}

/** Where the password file goes, named in the plan before the directory exists. */
const CONFIG_PLACEHOLDER = '<private temporary directory>/mongorestore.yaml';

/** mongorestore's per-collection and final lines, as mongo-tools writes them. */
export function parseRestoreOutput(output: string): { restored: number; failed: number; collections: Record<string, { restored: number; failed: number }> } {
  const collections: Record<string, { restored: number; failed: number }> = {};
  for (const match of output.matchAll(/finished restoring (\S+) \((\d+) documents?, (\d+) failures?\)/g)) {
    collections[match[1]!] = { restored: Number(match[2]), failed: Number(match[3]) };
  }
  const total = /(\d+) document\(s\) restored successfully\. (\d+) document\(s\) failed to restore\./.exec(output);
  if (!total) throw new Error('mongodb restore: mongorestore exited without its summary ("N document(s) restored successfully. M document(s) failed to restore.")');
  return { restored: Number(total[1]), failed: Number(total[2]), collections };
}

/** The target read with the driver (loaded only when a restore runs). */
async function driverTarget(url: string): Promise<RestoreTarget> {
  const { MongoClient } = await import('mongodb');
  const { mongoTlsOptions } = await import('../../bootstrap/adapters/mongodb-adapter.ts');
  const client = new MongoClient(url, { appName: 'allixios-restore', serverSelectionTimeoutMS: 10_000, ...mongoTlsOptions(url) });
  await client.connect();
  return {
    collections: async (database) => (await client.db(database).listCollections({}, { nameOnly: true }).toArray()).map((info) => info.name),
    countDocuments: (database, collection) => client.db(database).collection(collection).countDocuments({}),
    hasTtlIndex: async (database, collection) =>
      (await client.db(database).collection(collection).listIndexes().toArray()).some((index) => typeof index.expireAfterSeconds === 'number'),
    close: () => client.close(),
  };
}

/** Runs mongorestore; its output (which holds no password) is returned, a failure thrown with its last lines. */
function runMongorestore(binary: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    // No shell: the arguments arrive as they are. Nothing of the caller's environment is needed.
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', (error) => reject(new Error(`mongodb restore: cannot run ${binary}: ${error.message}`, { cause: error })));
    child.on('close', (code) => {
      if (code === 0) resolve(output);
      else reject(new Error(`mongodb restore: ${binary} exited with ${code}: ${output.trim().split('\n').slice(-5).join(' | ')}`));
    });
  });
}

/**
 * Plans the restore of `options.archive` into a new database of the target, and takes the steps
 * with `execute: true`: mongorestore, then the driver's count of every collection of the new
 * database against mongorestore's own figures.
 */
export async function restoreMongodb(options: MongoRestoreOptions): Promise<MongoRestoreResult> {
  const sourceDatabase = options.sourceDatabase ?? MONGODB_DATABASE;
  const database = options.database ?? defaultDatabaseName(options.now ?? new Date());
  checkDatabaseName(sourceDatabase, 'source database');
  checkDatabaseName(database);
  if (database === sourceDatabase) {
    throw new Error(`mongodb restore: database: ${database} is the dumped database's own name; restore beside it, into a new database (the default is allixios_restore_<time>)`);
  }
  const archive = options.fetch ? undefined : await stat(options.archive).catch(() => undefined);
  if (!options.fetch && !archive?.isFile())
    throw new Error(`mongodb restore: archive: no file at ${options.archive} (fetch <path>/dump/<id>/mongodb.archive from the object store first)`);
  const archiveText = options.fetch ? `${options.fetch.from} (fetched to a private temporary file)` : `${options.archive} (${archive!.size} bytes)`;
  const split = splitTargetUrl(options.targetUrl);
  const target = options.target ?? (await driverTarget(options.targetUrl));
  try {
    const existing = (await target.collections(database)).sort();
    if (existing.length > 0 && !options.replaceExisting) {
      throw new Error(
        `mongodb restore: the database ${database} on ${split.hosts} is not empty (${existing.join(', ')}): a restore goes into a new, empty database; name another one`,
      );
    }
    const drop = existing.length > 0;
    const planned = restoreArguments({
      archive: options.fetch ? '<fetched archive>' : options.archive,
      url: split.url,
      configFile: CONFIG_PLACEHOLDER,
      sourceDatabase,
      database,
      drop,
    });
    const plan: MongoRestorePlan = {
      archive: options.archive,
      server: split.hosts,
      sourceDatabase,
      database,
      arguments: planned,
      steps: [
        drop
          ? `${database} on ${split.hosts} holds ${existing.join(', ')}, and the operator named it twice: mongorestore drops each collection it restores first (--drop); a collection the dump does not hold stays`
          : `check that ${database} on ${split.hosts} holds no collection: it holds none`,
        ...(options.fetch ? [`fetch ${options.fetch.from} into a private temporary directory`] : []),
        `write the target's password to a private temporary file for mongorestore's --config (mode 0600), never to its command line`,
        `mongorestore ${planned.join(' ')}: the collections of ${sourceDatabase} in ${archiveText}, renamed into ${database}, indexes included, admin's users and roles left out`,
        `no --oplogReplay: mongorestore refuses it with renamed namespaces, so each collection is as the dump read it, not replayed to the dump's end`,
        `count the documents of every collection of ${database} and compare them with what mongorestore reports restoring (a collection with a TTL index may have lost expired documents since)`,
        `remove the temporary files${options.fetch ? ' (the archive too)' : ''}`,
      ],
    };
    if (!options.execute) return { plan, executed: false };
    return { plan, executed: true, figures: await execute(options, plan, split, target) };
  } finally {
    await target.close();
  }
}

async function execute(options: MongoRestoreOptions, plan: MongoRestorePlan, split: SplitUrl, target: RestoreTarget): Promise<NonNullable<MongoRestoreResult['figures']>> {
  const started = Date.now();
  const directory = await mkdtemp(join(tmpdir(), 'allixios-mongorestore-'));
  let output: string;
  try {
    const configFile = join(directory, 'mongorestore.yaml');
    // A JSON string is a YAML double-quoted scalar: any password, quoted exactly.
    await writeFile(configFile, split.password !== undefined ? `password: ${JSON.stringify(split.password)}\n` : '', { mode: 0o600 });
    let archive = plan.archive;
    if (options.fetch) {
      archive = join(directory, ARCHIVE_NAME);
      await options.fetch.into(archive);
    }
    const drop = plan.arguments.includes('--drop');
    const args = restoreArguments({ archive, url: split.url, configFile, sourceDatabase: plan.sourceDatabase, database: plan.database, drop });
    output = await runMongorestore(options.mongorestore ?? 'mongorestore', args);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
  const reported = parseRestoreOutput(output);
  if (reported.failed > 0) {
    throw new Error(`mongodb restore: mongorestore reports ${reported.failed} document(s) it failed to restore into ${plan.database} (and ${reported.restored} restored)`);
  }
  const collections: Record<string, CollectionFigures> = {};
  const problems: string[] = [];
  const restoredHere = (name: string) => reported.collections[`${plan.database}.${name}`] ?? reported.collections[`${plan.sourceDatabase}.${name}`];
  for (const name of (await target.collections(plan.database)).sort()) {
    // With --drop, a collection of the target that the dump does not hold stays, and is not the restore's.
    if (plan.arguments.includes('--drop') && !restoredHere(name)) continue;
    const counted = await target.countDocuments(plan.database, name);
    const mine = reported.collections[`${plan.database}.${name}`] ?? reported.collections[`${plan.sourceDatabase}.${name}`] ?? { restored: 0, failed: 0 };
    const expired = Math.max(0, mine.restored - counted);
    collections[name] = { restored: mine.restored, failed: mine.failed, counted, expired };
    if (counted > mine.restored) problems.push(`${name}: ${counted} documents counted, ${mine.restored} restored (something else writes to ${plan.database})`);
    else if (expired > 0 && !(await target.hasTtlIndex(plan.database, name)))
      problems.push(`${name}: ${mine.restored} documents restored, ${counted} counted, and it has no TTL index to explain the gap`);
  }
  const counted = Object.values(collections).reduce((sum, figures) => sum + figures.counted, 0);
  const listed = Object.values(collections).reduce((sum, figures) => sum + figures.restored, 0);
  if (listed !== reported.restored) problems.push(`mongorestore restored ${reported.restored} documents in all, the collections of ${plan.database} account for ${listed}`);
  if (problems.length > 0) throw new Error(`mongodb restore: the restored database ${plan.database} does not match what mongorestore reported: ${problems.join('; ')}`);
  return { restored: reported.restored, failed: reported.failed, counted, collections, seconds: (Date.now() - started) / 1000 };
}

// ---------------------------------------------------------------------------------------------
// `npm run restore -- --engine mongodb`: the request of stacks/restore, answered with the above

/** rclone's settings for the stack's store, its keys from the operator's environment (AWS_ACCESS_KEY_ID...), never a command line. */
/** The dumps uploaded under `<path>/dump/`, oldest first (their names are UTC timestamps). */
export function listDumps(store: ObjectStoreSpec, path: string, rclone = 'rclone'): Promise<string[]> {
  return listUploads('mongodb restore', store, path, DUMP_JOB, rclone);
}

export interface MongodbRestoreTools {
  rclone?: string;
  mongorestore?: string;
  target?: RestoreTarget;
  now?: Date;
}

/** The engine's restore as `npm run restore` calls it (databases/backup.ts: EngineRestore). */
export function mongodbEngineRestore(tools: MongodbRestoreTools = {}): EngineRestore {
  return {
    async plan(request: RestoreRequest): Promise<RestorePlan> {
      if (!request.url) throw new Error('mongodb restore: MONGODB_URL: expected the admin URL (root, authSource=admin) of the server to restore into, got none');
      if (request.to) throw new Error('mongodb restore: --to: a MongoDB backup is a nightly dump, not a point in time; name a dump with --backup <id> (its UTC timestamp)');
      let archive: string;
      let fetch: MongoRestoreOptions['fetch'];
      if (request.source !== undefined) {
        const found = await stat(request.source);
        archive = found.isDirectory() ? join(request.source, ARCHIVE_NAME) : request.source;
      } else if (request.settings) {
        const settings = request.settings;
        const rclone = tools.rclone ?? 'rclone';
        let id = request.backup;
        if (id === undefined) {
          const dumps = await listDumps(settings.objectStore, settings.path, rclone);
          id = dumps.at(-1);
          if (id === undefined) throw new Error(`mongodb restore: no dump under s3://${settings.objectStore.bucket}/${settings.path}/${DUMP_JOB}/: nothing to restore`);
        }
        const key = archiveKey(settings, id);
        archive = ARCHIVE_NAME;
        fetch = {
          from: `s3://${settings.objectStore.bucket}/${key}`,
          into: async (file) => {
            await downloadObject('mongodb restore', settings.objectStore, key, file, rclone);
          },
        };
      } else {
        throw new Error('mongodb restore: expected the stack (--stack) or a local copy of a dump (--from), got neither');
      }
      const options: MongoRestoreOptions = {
        archive,
        ...(fetch ? { fetch } : {}),
        targetUrl: request.url,
        database: request.target,
        replaceExisting: request.replaceExisting,
        ...(tools.mongorestore ? { mongorestore: tools.mongorestore } : {}),
        ...(tools.target ? { target: tools.target } : {}),
        ...(tools.now ? { now: tools.now } : {}),
      };
      const { plan } = await restoreMongodb(options);
      return {
        steps: plan.steps,
        execute: async (log) => {
          log(`restoring into ${plan.database} on ${plan.server}`);
          const { figures } = await restoreMongodb({ ...options, execute: true });
          const result: Record<string, string | number> = {
            database: plan.database,
            restored: figures!.restored,
            counted: figures!.counted,
            failed: figures!.failed,
            seconds: figures!.seconds,
          };
          for (const [name, collection] of Object.entries(figures!.collections)) result[`${name}.counted`] = collection.counted;
          return result;
        },
      };
    },
  };
}
