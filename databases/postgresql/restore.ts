/**
 * Restoring PostgreSQL from its pgBackRest repository (databases/postgresql/README.md, "Backups and
 * point-in-time recovery"), as a library function the restore CLI calls: {@link restorePostgresql}
 * plans first (the human-readable steps, returned), and only when told executes them:
 *
 * 1. pgBackRest restores the chosen backup into a new, empty data directory (a non-empty one is
 *    refused, by name), with the recovery settings for the target (a time, a backup, or the latest
 *    archived WAL) and archiving off: a restored copy must never push WAL into the live cluster's
 *    repository;
 * 2. a PostgreSQL of the given binaries starts on it, on its Unix socket only (a private directory;
 *    the port names the socket), replays the archived WAL up to the target and promotes itself;
 * 3. the result is verified and measured: where recovery ended, the platform's main tables counted.
 *
 * Secrets (the repository's passphrase, the object store's keys) reach pgBackRest and the server
 * (whose restore_command is pgBackRest) through their environment only: never an argument, a file
 * or the plan.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import pg from 'pg';
import type { EngineRestore, RestorePlan, RestoreRequest } from '../backup.ts';
import { PGBACKREST_VARIABLES, pgbackrestConf, pgbackrestConfig, STANZA, type PgbackrestRepository } from './backup.ts';

/** What to recover to: the end of the archived WAL, a moment, or the moment a backup ended. */
export type RestoreTarget = { latest: true } | { time: string } | { backup: string };

export interface PostgresqlRestoreOptions {
  /** The stack's object store (its backup settings) or a directory holding a repository. */
  repository: PgbackrestRepository;
  /** Given to pgBackRest and the restored server through their environment only. */
  credentials: { cipherPass: string; accessKeyId?: string; secretAccessKey?: string };
  target: RestoreTarget;
  /** The new data directory: absent (it is created) or empty; anything else is refused. */
  dataDirectory: string;
  /** The PostgreSQL binaries (the directory of `postgres`, of the backup's major version) and the pgbackrest program. */
  binaries: { postgresql: string; pgbackrest: string };
  /** Where the restore keeps its configuration, socket, spool and the server's log (default: a new temporary directory). */
  workDirectory?: string;
  /** The OS user the restore and the server run as (PostgreSQL refuses root): required when running as root. */
  runAs?: { uid: number; gid: number };
  /** The tables to count after recovery, in the database `allixios` (else `postgres`): default {@link PLATFORM_TABLES}; those absent are left out. */
  tables?: readonly string[];
  /** The cluster's superuser, which counts over the socket (default `postgres`). */
  superuser?: string;
  /** Leave the restored server running and return a handle to it (default: stop it, cleanly). */
  keepRunning?: boolean;
  /** How long the replay may take (default 6 h). */
  recoveryTimeoutSeconds?: number;
  /** Execute the plan; without it only the plan is returned (nothing is written). */
  execute?: boolean;
  /** The clock, for a target in the future (tests). */
  now?: () => Date;
}

/** The backup a restore starts from, as the repository lists it. */
export interface RestoreBackup {
  label: string;
  type: 'full' | 'diff' | 'incr';
  startedAt: string;
  stoppedAt: string;
  /** PostgreSQL's major version of the backup's cluster. */
  postgresqlVersion: string;
}

export interface PostgresqlRestorePlan {
  /** What will be done, in order, for a person to read before saying yes. */
  steps: string[];
  backup: RestoreBackup;
  /** The target as given to pgBackRest: `latest`, a normalised time, or the backup's label. */
  target: { kind: 'latest' } | { kind: 'time'; time: string } | { kind: 'backup'; label: string };
  dataDirectory: string;
  /** pgBackRest's restore arguments (no secret: the configuration file's path, the stanza, the set, the target). */
  pgbackrestArguments: string[];
}

export interface RestoredServer {
  socketDirectory: string;
  port: number;
  superuser: string;
  /** A client of the restored server, as the superuser, over its socket. */
  client(database?: string): pg.Client;
  /** Stops it cleanly (fast shutdown). */
  stop(): Promise<void>;
}

export interface PostgresqlRestoreResult {
  backup: string;
  /** The commit time of the last transaction replayed (`pg_last_xact_replay_timestamp()`), or null when none was. */
  recoveryEndTime: string | null;
  /** PostgreSQL's own account of where it stopped ("recovery stopping before commit of transaction 726, time ..."). */
  recoveryStop: string | null;
  /** The database the tables were counted in. */
  database: string;
  /** Row counts of the tables present, by name. */
  tables: Record<string, number>;
  seconds: { restore: number; recovery: number; total: number };
  dataDirectory: string;
  workDirectory: string;
  serverLog: string;
  /** With `keepRunning`. */
  server?: RestoredServer;
}

/** The platform's main tables (databases/postgresql/schemas/), counted after a restore. */
export const PLATFORM_TABLES = [
  'users',
  'author_profiles',
  'media',
  'categories',
  'tags',
  'articles',
  'article_tags',
  'article_revisions',
  'comments',
  'daily_article_stats',
] as const;

/** A restore refused before it started: the message names the thing, what was expected and what was found. */
export class RestoreError extends Error {
  constructor(message: string) {
    super(`PostgreSQL restore: ${message}`);
    this.name = 'RestoreError';
  }
}

const TIME_FORMAT = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)$/i;

/**
 * A recovery target time as PostgreSQL reads it, from ISO 8601 with an explicit offset: a time
 * without one would be read in whatever zone the restoring server has, so it is refused.
 */
export function parseTargetTime(text: string): { text: string; epochMicros: bigint } {
  const match = TIME_FORMAT.exec(text.trim());
  const expected = 'a time with its offset, such as 2026-12-02T10:15:00Z or 2026-12-02 10:15:00.250+01:00';
  if (!match) throw new RestoreError(`target time: expected ${expected}, got ${JSON.stringify(text)}`);
  const [, year, month, day, hour, minute, second = '00', fraction = '', zone] = match;
  const offset = zone!.toUpperCase() === 'Z' ? '+00:00' : zone!.length === 3 ? `${zone}:00` : zone!.includes(':') ? zone! : `${zone!.slice(0, 3)}:${zone!.slice(3)}`;
  const offsetMinutes = (offset.startsWith('-') ? -1 : 1) * (Number(offset.slice(1, 3)) * 60 + Number(offset.slice(4, 6)));
  const utc = Date.UTC(Number(year), Number(month) - 1, Number(day), Number(hour), Number(minute), Number(second));
  const check = new Date(utc);
  if (
    check.getUTCFullYear() !== Number(year) ||
    check.getUTCMonth() !== Number(month) - 1 ||
    check.getUTCDate() !== Number(day) ||
    check.getUTCHours() !== Number(hour) ||
    check.getUTCMinutes() !== Number(minute) ||
    check.getUTCSeconds() !== Number(second) ||
    Math.abs(offsetMinutes) > 14 * 60
  ) {
    throw new RestoreError(`target time: expected ${expected} (a real date and time), got ${JSON.stringify(text)}`);
  }
  const micros = fraction.padEnd(6, '0');
  const epochMicros = (BigInt(utc) - BigInt(offsetMinutes) * 60_000n) * 1000n + BigInt(micros);
  return { text: `${year}-${month}-${day} ${hour}:${minute}:${second}.${micros}${offset}`, epochMicros };
}

const BACKUP_LABEL = /^\d{8}-\d{6}F(_\d{8}-\d{6}[DI])?$/;

interface InfoBackup {
  label: string;
  type: 'full' | 'diff' | 'incr';
  error?: boolean;
  timestamp: { start: number; stop: number };
  database: { id: number };
}
interface InfoStanza {
  name: string;
  status?: { code: number; message: string };
  backup: InfoBackup[];
  db: Array<{ id: number; version: string }>;
  repo?: Array<{ status: { code: number; message: string } }>;
}

interface Run {
  env: NodeJS.ProcessEnv;
  runAs?: { uid: number; gid: number };
}

/** Runs a program (asynchronously: a server of this process may be logging meanwhile) and returns its output; throws with its output on failure. */
function runProgram(program: string, args: string[], run: Run, what: string): Promise<string> {
  return new Promise((done, fail) => {
    execFile(program, args, { env: run.env, maxBuffer: 64 * 2 ** 20, ...(run.runAs ?? {}) }, (error, stdout, stderr) => {
      if (error) fail(new RestoreError(`${what} failed (${program} ${args.join(' ')}): ${`${stderr}${stdout}`.trim().split('\n').slice(-15).join('\n') || error.message}`));
      else done(stdout);
    });
  });
}

function environment(options: PostgresqlRestoreOptions): NodeJS.ProcessEnv {
  const { credentials } = options;
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    LANG: 'C.UTF-8',
    [PGBACKREST_VARIABLES.cipherPass]: credentials.cipherPass,
    ...(credentials.accessKeyId !== undefined ? { [PGBACKREST_VARIABLES.accessKeyId]: credentials.accessKeyId } : {}),
    ...(credentials.secretAccessKey !== undefined ? { [PGBACKREST_VARIABLES.secretAccessKey]: credentials.secretAccessKey } : {}),
  };
}

/** The repository's options as arguments (for `info`, which needs no configuration file). */
function repositoryArguments(repository: PgbackrestRepository): string[] {
  const { global } = pgbackrestConfig(repository, { role: 'restore', data: '/nonexistent', paths: { lock: tmpdir(), spool: tmpdir() } });
  return Object.entries(global)
    .filter(([key]) => key.startsWith('repo1-') && !key.startsWith('repo1-retention'))
    .map(([key, value]) => `--${key}=${value}`);
}

function describeRepository(repository: PgbackrestRepository): string {
  if (repository.kind === 'posix') return `the repository in ${repository.path}`;
  const { objectStore, path } = repository.backup;
  return `the repository at ${objectStore.endpoint}, bucket ${objectStore.bucket}, path /${path}`;
}

/** The repository's view of the stanza (`pgbackrest info`), or a clear error. */
async function readRepository(options: PostgresqlRestoreOptions): Promise<InfoStanza> {
  const args = ['--no-config', ...repositoryArguments(options.repository), `--stanza=${STANZA}`, '--output=json', '--log-level-console=warn', 'info'];
  const stdout = await runProgram(options.binaries.pgbackrest, args, { env: environment(options), ...(options.runAs ? { runAs: options.runAs } : {}) }, 'reading the repository');
  let stanzas: InfoStanza[];
  try {
    stanzas = JSON.parse(stdout) as InfoStanza[];
  } catch {
    // A wrong passphrase decrypts backup.info into garbage, which pgBackRest reports as a format
    // error quoting the garbage (bytes that are not even JSON's).
    if (/FormatError|CryptoError/.test(stdout)) {
      throw new RestoreError(
        `${describeRepository(options.repository)} cannot be read: its backup.info decrypts to garbage: expected the stack's backup-cipher-pass as the passphrase, got another`,
      );
    }
    throw new RestoreError(`reading the repository: pgbackrest info printed no JSON: ${stdout.slice(0, 500)}`);
  }
  const stanza = stanzas.find((candidate) => candidate.name === STANZA);
  const where = describeRepository(options.repository);
  if (!stanza) throw new RestoreError(`${where} has no stanza ${STANZA}`);
  const repoStatus = stanza.repo?.[0]?.status;
  if (stanza.status?.code === 1) throw new RestoreError(`${where} has no stanza ${STANZA} (expected the path the stack backs up to): ${stanza.status.message}`);
  if (repoStatus && repoStatus.code === 99) {
    // A wrong passphrase decrypts backup.info into garbage, which pgBackRest reports as a format error.
    const hint = /FormatError|CryptoError/.test(repoStatus.message) ? " (it decrypts to garbage: expected the stack's backup-cipher-pass as the passphrase)" : '';
    throw new RestoreError(`${where} cannot be read: ${repoStatus.message.split('\n')[0]}${hint}`);
  }
  // 2: no valid backup (chooseBackup says so, naming the repository).
  if (stanza.status && stanza.status.code !== 0 && stanza.status.code !== 2) throw new RestoreError(`${where}: ${stanza.status.message}`);
  return stanza;
}

const isoSeconds = (epochSeconds: number) => new Date(epochSeconds * 1000).toISOString().replace('.000Z', 'Z');

function chooseBackup(stanza: InfoStanza, target: RestoreTarget, now: Date, where: string): { backup: InfoBackup; target: PostgresqlRestorePlan['target'] } {
  const backups = stanza.backup.filter((backup) => !backup.error).sort((a, b) => a.timestamp.stop - b.timestamp.stop);
  if (backups.length === 0) throw new RestoreError(`${where} holds no backup of stanza ${STANZA} yet: nothing to restore (a backup job must have succeeded once)`);
  if ('latest' in target) return { backup: backups.at(-1)!, target: { kind: 'latest' } };
  if ('backup' in target) {
    if (!BACKUP_LABEL.test(target.backup))
      throw new RestoreError(`backup: expected a pgBackRest backup label such as 20261206-010002F or 20261206-010002F_20261207-010003D, got ${JSON.stringify(target.backup)}`);
    const backup = backups.find((candidate) => candidate.label === target.backup);
    if (!backup)
      throw new RestoreError(`backup: expected one of the repository's backups (${backups.map((candidate) => candidate.label).join(', ')}), got ${JSON.stringify(target.backup)}`);
    return { backup, target: { kind: 'backup', label: backup.label } };
  }
  const time = parseTargetTime(target.time);
  const nowMicros = BigInt(now.getTime()) * 1000n;
  if (time.epochMicros > nowMicros)
    throw new RestoreError(`target time: expected a moment in the past (now is ${now.toISOString()}), got ${JSON.stringify(target.time)}; the newest moment is --latest`);
  // The newest backup that ended at or before the target: recovery can start from it and reach the target.
  const usable = backups.filter((backup) => BigInt(backup.timestamp.stop) * 1_000_000n <= time.epochMicros);
  if (usable.length === 0) {
    const first = backups[0]!;
    throw new RestoreError(
      `target time: expected a moment after the end of the oldest backup kept (${first.label}, ended ${isoSeconds(first.timestamp.stop)}), since recovery starts from a backup, got ${JSON.stringify(target.time)}: before the first backup, the repository cannot recover it`,
    );
  }
  return { backup: usable.at(-1)!, target: { kind: 'time', time: time.text } };
}

/** The data directory: absent (its parent must exist) or an empty directory; its absolute path. */
function checkDataDirectory(path: string): string {
  const absolute = resolve(path);
  if (!existsSync(absolute)) {
    if (!existsSync(dirname(absolute)))
      throw new RestoreError(`data directory ${absolute}: expected a new directory in an existing one, got a path whose parent ${dirname(absolute)} does not exist`);
    return absolute;
  }
  if (!statSync(absolute).isDirectory()) throw new RestoreError(`data directory ${absolute}: expected a new, empty directory, got a file`);
  const entries = readdirSync(absolute);
  if (entries.length > 0) {
    throw new RestoreError(
      `data directory ${absolute}: expected a new, empty directory (a restore never writes over data), got one holding ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'} (${entries.slice(0, 5).join(', ')}${entries.length > 5 ? ', ...' : ''})`,
    );
  }
  return absolute;
}

async function postgresqlMajor(options: PostgresqlRestoreOptions): Promise<string> {
  const postgres = join(options.binaries.postgresql, 'postgres');
  if (!existsSync(postgres))
    throw new RestoreError(`binaries.postgresql: expected the directory of the PostgreSQL programs (postgres), got ${options.binaries.postgresql}, which has no postgres`);
  const version = await runProgram(postgres, ['--version'], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } }, 'reading the PostgreSQL version');
  const match = /\(PostgreSQL\)\s+(\d+)/.exec(version);
  if (!match) throw new RestoreError(`binaries.postgresql: could not read a version from "${version.trim()}"`);
  return match[1]!;
}

/**
 * The plan: checks the target directory, the target and the binaries, reads the repository (the
 * only I/O besides `postgres --version`: nothing is written) and says what the restore will do.
 */
export async function planPostgresqlRestore(options: PostgresqlRestoreOptions): Promise<PostgresqlRestorePlan> {
  if (!options.credentials.cipherPass) throw new RestoreError("credentials.cipherPass: expected the stack's backup-cipher-pass (the repository is encrypted with it), got nothing");
  if ('time' in options.target) parseTargetTime(options.target.time);
  const dataDirectory = checkDataDirectory(options.dataDirectory);
  if (!existsSync(options.binaries.pgbackrest))
    throw new RestoreError(`binaries.pgbackrest: expected the pgbackrest program, got ${options.binaries.pgbackrest}, which does not exist`);
  const major = await postgresqlMajor(options);
  const where = describeRepository(options.repository);
  const stanza = await readRepository(options);
  const chosen = chooseBackup(stanza, options.target, (options.now ?? (() => new Date()))(), where);
  const postgresqlVersion = stanza.db.find((db) => db.id === chosen.backup.database.id)?.version ?? 'unknown';
  if (postgresqlVersion !== major) {
    throw new RestoreError(
      `binaries.postgresql: expected PostgreSQL ${postgresqlVersion}, the version of backup ${chosen.backup.label}, got ${major} in ${options.binaries.postgresql}`,
    );
  }
  const backup: RestoreBackup = {
    label: chosen.backup.label,
    type: chosen.backup.type,
    startedAt: isoSeconds(chosen.backup.timestamp.start),
    stoppedAt: isoSeconds(chosen.backup.timestamp.stop),
    postgresqlVersion,
  };
  const recovery =
    chosen.target.kind === 'time'
      ? ['--type=time', `--target=${chosen.target.time}`, '--target-action=promote']
      : chosen.target.kind === 'backup'
        ? ['--type=immediate', '--target-action=promote']
        : ['--type=default'];
  const pgbackrestArguments = [`--stanza=${STANZA}`, `--set=${backup.label}`, ...recovery, '--archive-mode=off', 'restore'];
  const to =
    chosen.target.kind === 'time'
      ? `the moment ${chosen.target.time} (every transaction committed up to it, none after)`
      : chosen.target.kind === 'backup'
        ? `the end of backup ${backup.label} (${backup.stoppedAt}), nothing after`
        : 'the end of the archived WAL (the latest moment the repository holds)';
  return {
    steps: [
      `Read ${where}: stanza ${STANZA}, ${stanza.backup.length} backup(s); start from the ${backup.type} backup ${backup.label} (${backup.startedAt} to ${backup.stoppedAt}, PostgreSQL ${postgresqlVersion}).`,
      `Create the data directory ${dataDirectory} (new and empty; nothing existing is touched) and restore the backup into it with pgBackRest (${options.binaries.pgbackrest} ${pgbackrestArguments.join(' ')}), archiving off on the restored copy so it never writes into the repository.`,
      `Start PostgreSQL ${major} (${options.binaries.postgresql}/postgres) on it, on a Unix socket in a private directory only, and replay the archived WAL to ${to}, then promote it.`,
      `Verify: the time of the last transaction replayed, and row counts of ${(options.tables ?? PLATFORM_TABLES).join(', ')} where present.`,
      options.keepRunning ? 'Leave the restored server running for inspection.' : 'Stop the restored server cleanly; the data directory stays, restored and promoted.',
    ],
    backup,
    target: chosen.target,
    dataDirectory,
    pgbackrestArguments,
  };
}

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? done(address.port) : fail(new Error('no free port'))));
    });
  });
}

function owned(path: string, runAs: PostgresqlRestoreOptions['runAs'], mode?: number): void {
  if (!existsSync(path)) mkdirSync(path, { recursive: true, ...(mode !== undefined ? { mode } : {}) });
  if (runAs) chownSync(path, runAs.uid, runAs.gid);
}

const quoteConf = (value: string) => `'${value.replaceAll("'", "''")}'`;

/** The restored server's own settings: the socket only, trust on it (a private directory), no hot standby (see below). */
function serverConf(socketDirectory: string, port: number, hbaFile: string): string {
  return [
    "# Written by databases/postgresql/restore.ts for the restored server; the data directory keeps the cluster's own files.",
    "listen_addresses = ''",
    `port = ${port}`,
    `unix_socket_directories = ${quoteConf(socketDirectory)}`,
    `hba_file = ${quoteConf(hbaFile)}`,
    // Without hot standby nothing connects before the end of recovery, and recovery does not
    // pause for the cluster's max_connections & co. being larger than this server's defaults.
    'hot_standby = off',
    "log_destination = 'stderr'",
    'logging_collector = off',
    "log_timezone = 'UTC'",
    "timezone = 'UTC'",
    '',
  ].join('\n');
}

function logLine(log: string, pattern: RegExp): string | null {
  return (
    log
      .split('\n')
      .find((line) => pattern.test(line))
      ?.replace(/^.*?(LOG|FATAL):\s+/, '') ?? null
  );
}

function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return `(no ${file})`;
  }
}

const alive = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

function stopServer(child: ChildProcess): Promise<void> {
  if (!alive(child)) return Promise.resolve();
  return new Promise((done) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('exit', () => {
      clearTimeout(timer);
      done();
    });
    // Fast shutdown: sessions end, a checkpoint is written.
    child.kill('SIGINT');
  });
}

/**
 * Restores PostgreSQL from its pgBackRest repository into a new, empty data directory (see the
 * module's comment). Returns the plan; with `execute`, also the result of carrying it out.
 */
export async function restorePostgresql(options: PostgresqlRestoreOptions): Promise<{ plan: PostgresqlRestorePlan; result?: PostgresqlRestoreResult }> {
  const plan = await planPostgresqlRestore(options);
  if (!options.execute) return { plan };
  const started = performance.now();
  const { runAs } = options;
  const run: Run = { env: environment(options), ...(runAs ? { runAs } : {}) };
  const work = options.workDirectory ? resolve(options.workDirectory) : mkdtempSync(join(tmpdir(), 'allixios-postgresql-restore-'));
  owned(work, runAs, 0o700);
  const socketDirectory = join(work, 'socket');
  for (const directory of [socketDirectory, join(work, 'spool'), join(work, 'lock')]) owned(directory, runAs, 0o700);
  // Checked again: the plan may be old.
  checkDataDirectory(plan.dataDirectory);
  owned(plan.dataDirectory, runAs, 0o700);

  const configFile = join(work, 'pgbackrest.conf');
  writeFileSync(
    configFile,
    pgbackrestConf(pgbackrestConfig(options.repository, { role: 'restore', data: plan.dataDirectory, paths: { lock: join(work, 'lock'), spool: join(work, 'spool') } })),
    { mode: 0o600 },
  );
  if (runAs) chownSync(configFile, runAs.uid, runAs.gid);
  await runProgram(
    options.binaries.pgbackrest,
    [`--config=${configFile}`, `--pg1-path=${plan.dataDirectory}`, ...plan.pgbackrestArguments],
    run,
    `restoring backup ${plan.backup.label}`,
  );
  const restored = performance.now();

  const port = await freePort();
  const hbaFile = join(work, 'pg_hba.conf');
  writeFileSync(hbaFile, '# Only the Unix socket, in a directory only the restoring user may enter.\nlocal all all trust\n');
  const serverConfFile = join(work, 'postgresql.conf');
  writeFileSync(serverConfFile, serverConf(socketDirectory, port, hbaFile));
  if (runAs) for (const file of [hbaFile, serverConfFile]) chownSync(file, runAs.uid, runAs.gid);
  const serverLog = join(work, 'postgresql.log');
  const log = openSync(serverLog, 'a');
  if (runAs) chownSync(serverLog, runAs.uid, runAs.gid);
  let child: ChildProcess;
  try {
    child = spawn(join(options.binaries.postgresql, 'postgres'), ['-D', plan.dataDirectory, '-c', `config_file=${serverConfFile}`], {
      stdio: ['ignore', log, log],
      env: run.env,
      ...(runAs ?? {}),
    });
  } finally {
    closeSync(log);
  }
  const superuser = options.superuser ?? 'postgres';
  const client = (database = 'postgres') => new pg.Client({ host: socketDirectory, port, user: superuser, database, connectionTimeoutMillis: 5000 });
  const server: RestoredServer = { socketDirectory, port, superuser, client, stop: () => stopServer(child) };

  try {
    const deadline = performance.now() + (options.recoveryTimeoutSeconds ?? 6 * 3600) * 1000;
    for (;;) {
      if (!alive(child))
        throw new RestoreError(`the restored server stopped during recovery (exit ${child.exitCode ?? child.signalCode}); its log ${serverLog} ends:\n${tail(serverLog)}`);
      if (performance.now() > deadline)
        throw new RestoreError(`recovery did not end within ${options.recoveryTimeoutSeconds ?? 6 * 3600} s; its log ${serverLog} ends:\n${tail(serverLog)}`);
      const probe = client();
      probe.on('error', () => {});
      try {
        await probe.connect();
        const [row] = (await probe.query<{ recovery: boolean }>('SELECT pg_is_in_recovery() AS recovery')).rows;
        if (row && !row.recovery) break;
      } catch {
        // starting, or still recovering (no hot standby: nothing connects before the end)
      } finally {
        await probe.end().catch(() => {});
      }
      await new Promise((done) => setTimeout(done, 250));
    }
    const recovered = performance.now();

    const admin = client();
    await admin.connect();
    let database = 'postgres';
    let recoveryEndTime: string | null;
    try {
      const [row] = (
        await admin.query<{ replayed: string | null; platform: boolean }>(
          "SELECT pg_last_xact_replay_timestamp()::text AS replayed, EXISTS (SELECT FROM pg_database WHERE datname = 'allixios') AS platform",
        )
      ).rows;
      recoveryEndTime = row?.replayed ?? null;
      if (row?.platform) database = 'allixios';
    } finally {
      await admin.end().catch(() => {});
    }
    const tables: Record<string, number> = {};
    const counter = client(database);
    await counter.connect();
    try {
      for (const table of options.tables ?? PLATFORM_TABLES) {
        const [present] = (await counter.query<{ relation: string | null }>('SELECT to_regclass($1)::text AS relation', [table])).rows;
        if (!present?.relation) continue;
        const [count] = (await counter.query<{ count: string }>(`SELECT count(*) AS count FROM ${present.relation}`)).rows;
        tables[table] = Number(count!.count);
      }
    } finally {
      await counter.end().catch(() => {});
    }
    const text = readFileSync(serverLog, 'utf8');
    const result: PostgresqlRestoreResult = {
      backup: plan.backup.label,
      recoveryEndTime,
      recoveryStop: logLine(text, /recovery stopping (before|after)/) ?? logLine(text, /last completed transaction was at log time/),
      database,
      tables,
      seconds: {
        restore: Math.round(restored - started) / 1000,
        recovery: Math.round(recovered - restored) / 1000,
        total: Math.round(performance.now() - started) / 1000,
      },
      dataDirectory: plan.dataDirectory,
      workDirectory: work,
      serverLog,
    };
    if (options.keepRunning) return { plan, result: { ...result, server } };
    await stopServer(child);
    return { plan, result };
  } catch (error) {
    await stopServer(child);
    throw error;
  }
}

/** The variable holding the repository's passphrase for `npm run restore` (the stack's `backup-cipher-pass`). */
export const RESTORE_CIPHER_PASS_VARIABLE = 'PGBACKREST_REPO1_CIPHER_PASS';

/** The tools `npm run restore` runs for PostgreSQL, and the user it runs PostgreSQL as when run as root. */
export interface PostgresqlRestoreTools {
  /** The directory of `postgres` (default: the newest under /usr/lib/postgresql, or ALLIXIOS_POSTGRESQL_BIN). */
  postgresqlBin?: string;
  pgbackrest?: string;
  env?: NodeJS.ProcessEnv;
}

function newestPostgresqlBin(env: NodeJS.ProcessEnv): string {
  if (env.ALLIXIOS_POSTGRESQL_BIN) return env.ALLIXIOS_POSTGRESQL_BIN;
  const root = '/usr/lib/postgresql';
  const majors = existsSync(root)
    ? readdirSync(root)
        .map(Number)
        .filter((major) => existsSync(join(root, String(major), 'bin', 'postgres')))
    : [];
  const newest = majors.sort((a, b) => b - a)[0];
  if (newest === undefined)
    throw new Error(`postgresql restore: no PostgreSQL under ${root}: install the backup's major version (apt-get install -y postgresql-<major>) or set ALLIXIOS_POSTGRESQL_BIN`);
  return join(root, String(newest), 'bin');
}

/** The `postgres` OS user, which the restore and the server run as when the command runs as root (PostgreSQL refuses root). */
function postgresUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((entry) => entry.startsWith('postgres:'));
  if (!line)
    throw new Error(
      'postgresql restore: running as root, and there is no postgres user to run PostgreSQL as (PostgreSQL refuses root): install PostgreSQL from the distribution, or run as another user',
    );
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/**
 * PostgreSQL's restore as `npm run restore` calls it (databases/backup.ts, EngineRestore): from the
 * stack's pgBackRest repository (or a local one, `--from <directory>`), to a moment (`--to`), a
 * backup (`--backup <label>`) or the end of the archived WAL, into a new, empty data directory, then
 * started and verified: {@link restorePostgresql}. The repository's passphrase comes from
 * PGBACKREST_REPO1_CIPHER_PASS and the store's keys from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,
 * both from the operator's environment.
 */
export function postgresqlEngineRestore(tools: PostgresqlRestoreTools = {}): EngineRestore {
  const env = tools.env ?? process.env;
  return {
    async plan(request: RestoreRequest): Promise<RestorePlan> {
      if (request.replaceExisting) {
        throw new Error(
          'postgresql restore: --replace-existing: a data directory is never written over; restore into a new one and switch to it (databases/postgresql/README.md, "Backups and point-in-time recovery")',
        );
      }
      const cipherPass = env[RESTORE_CIPHER_PASS_VARIABLE];
      if (!cipherPass) {
        throw new Error(
          `postgresql restore: ${RESTORE_CIPHER_PASS_VARIABLE}: expected the repository's passphrase (the stack's backup-cipher-pass: kubectl get secret postgresql-credentials -o jsonpath='{.data.backup-cipher-pass}' | base64 -d), got none`,
        );
      }
      const repository: PgbackrestRepository =
        request.source !== undefined
          ? { kind: 'posix', path: resolve(request.source), retention: { count: 1, days: 1 } }
          : request.settings
            ? { kind: 'objectStore', backup: request.settings }
            : (() => {
                throw new Error('postgresql restore: expected the stack (--stack) or a local repository (--from), got neither');
              })();
      const runAs = postgresUser();
      const options: PostgresqlRestoreOptions = {
        repository,
        credentials: {
          cipherPass,
          ...(env.AWS_ACCESS_KEY_ID ? { accessKeyId: env.AWS_ACCESS_KEY_ID } : {}),
          ...(env.AWS_SECRET_ACCESS_KEY ? { secretAccessKey: env.AWS_SECRET_ACCESS_KEY } : {}),
        },
        target: request.to ? { time: request.to.toISOString() } : request.backup !== undefined ? { backup: request.backup } : { latest: true },
        dataDirectory: resolve(request.target),
        binaries: { postgresql: tools.postgresqlBin ?? newestPostgresqlBin(env), pgbackrest: tools.pgbackrest ?? 'pgbackrest' },
        ...(runAs ? { runAs } : {}),
      };
      const { plan } = await restorePostgresql(options);
      return {
        steps: plan.steps,
        execute: async (log) => {
          log(`restoring backup ${plan.backup.label} into ${plan.dataDirectory}`);
          const { result } = await restorePostgresql({ ...options, execute: true });
          const figures: Record<string, string | number> = {
            backup: result!.backup,
            recoveryEnd: result!.recoveryEndTime ?? 'none replayed',
            database: result!.database,
            restoreSeconds: result!.seconds.restore,
            recoverySeconds: result!.seconds.recovery,
          };
          for (const [table, rows] of Object.entries(result!.tables)) figures[`${table}.rows`] = rows;
          return figures;
        },
      };
    },
  };
}
