/**
 * MongoDB's backups (issue 17): a nightly `mongodump --oplog` of the whole replica set, read from a
 * secondary, written as one gzipped archive into the job's scratch directory, which the target's
 * upload step sends to the object store (`<path>/dump/<UTC timestamp>/mongodb.archive`).
 *
 * Why mongodump and not Percona Backup for MongoDB: README.md, "Backups and restore". In short: the
 * official image ships the database tools (no image of our own, no agent beside every member), the
 * platform's documents are small enough for a logical dump, and a dump restores into any MongoDB of
 * the same major version, a new database beside the live one included.
 *
 * The job logs in as `allixios_backup`, which holds MongoDB's built-in `backup` role on admin and
 * nothing else (created by initdb/10-app-user.js on a new volume, by the bootstrap on an older
 * one). Its password never reaches a command line: mongodump reads it from a YAML file given with
 * `--config` (mongodump 100.3.0 and later), a secret file rendered from the engine's Secret.
 */
import { BACKUP_DIRECTORY, type BackupJob, type BackupSettings, type BackupSpec } from '../backup.ts';
import { CLIENT_CA_PATH } from '../connection.ts';
import type { ConnectionSpec, ConnectionTls } from '../engine.ts';
import { shellQuote } from '../shell.ts';

/** The login of the backup jobs, in the admin database like the platform's other users. */
export const BACKUP_USER = 'allixios_backup';
/** Its password, a generated secret of the engine. */
export const BACKUP_PASSWORD_SECRET = 'backup-password';
/** MongoDB's built-in role for mongodump: reads every database (the oplog and config.transactions too), writes nothing. */
export const BACKUP_ROLES = [{ role: 'backup', db: 'admin' }] as const;

/** The job's name: the CronJob is `mongodb-backup-dump`, the schedule `allixios:backups.schedules.mongodb.dump`. */
export const DUMP_JOB = 'dump';
/** The archive's name in the job's scratch directory and, once uploaded, in `<path>/dump/<timestamp>/`. */
export const ARCHIVE_NAME = 'mongodb.archive';
export const ARCHIVE_PATH = `${BACKUP_DIRECTORY}/${ARCHIVE_NAME}`;

/** The secret file holding `password: "<backup-password>"`, which mongodump reads with `--config`. */
export const DUMP_CONFIG_SOURCE = 'config/mongodump.yaml';
/** Mounted read-only, a directory of its own (secret files are mounted by directory). */
export const DUMP_CONFIG_PATH = '/etc/mongo/backup/mongodump.yaml';

/** The variable the target fills with the backup login's URL (without its password: mongodump reads it from its --config file). */
export const BACKUP_URL_VARIABLE = 'MONGODB_BACKUP_URL';

/**
 * The backup login as a connection: no database in the path (a URL naming one makes mongodump dump
 * only that database, which `--oplog` refuses: "--oplog mode only supported on full dumps"), its
 * users in admin. No read preference here: `--readPreference` on the command line says it, and the
 * tools refuse the same option given twice. On a replica set the target adds `replicaSet=rs0`
 * (`HighAvailabilitySpec.connectionQuery`), on a TLS stack the TLS form (`tls=true&tlsCAFile=...`).
 */
export function backupConnection(tls: ConnectionTls): ConnectionSpec {
  // `/` and nothing after it: the connection string needs the slash before its options (the tools' parser refuses `host:27017?...`).
  return { scheme: 'mongodb', username: BACKUP_USER, passwordSecret: BACKUP_PASSWORD_SECRET, path: '/', query: 'authSource=admin', tls };
}

/**
 * mongodump's words after the URI:
 * - `--config`: the password (the URI carries none, so the two never conflict);
 * - `--readPreference=secondaryPreferred`: a secondary when the set has one, so the dump's reads
 *   never compete with the primary's writes; the primary on a set of one member (ephemeral stacks)
 *   and while the secondaries are down, rather than no backup;
 * - `--oplog`: the oplog entries written while the dump runs go into the archive, so a restore
 *   that replays them (`mongorestore --oplogReplay`) lands on one instant, the dump's end. It
 *   needs a dump of the whole instance: every database but `local` (and `config`'s internals),
 *   so `admin`'s users and roles (SCRAM keys, never passwords) are in the archive too;
 * - `--archive --gzip`: one compressed file, what the upload sends;
 * - on a TLS stack `--ssl --sslCAFile`: TLS whatever the URL says, verified against the stack's CA
 *   bundle (the same path as the URL's `tlsCAFile`, which the tools accept; a different one they
 *   refuse as a conflict).
 */
export function dumpArguments(tls: boolean): string[] {
  return [
    `--config=${DUMP_CONFIG_PATH}`,
    '--readPreference=secondaryPreferred',
    '--oplog',
    `--archive=${ARCHIVE_PATH}`,
    '--gzip',
    ...(tls ? ['--ssl', `--sslCAFile=${CLIENT_CA_PATH}`] : []),
  ];
}

/**
 * The job's command: a shell only to put the URL from its variable into `--uri` (it carries the
 * user, never the password); everything else is a literal word. `exec`: mongodump's exit status is
 * the job's.
 */
export function dumpCommand(tls: boolean): string[] {
  const words = dumpArguments(tls).map(shellQuote).join(' ');
  return ['sh', '-c', `exec mongodump --uri="$${BACKUP_URL_VARIABLE}" ${words}`, 'mongodb-backup-dump'];
}

/** What a restore gets back and what is lost, for the render and the README. */
export const RECOVERY_POINT =
  'the state at the end of the last successful nightly dump (mongodump --oplog: consistent to that instant when restored over the whole set). ' +
  'Everything written since is lost: up to a day of drafts, preferences and logs with the default schedule. ' +
  "A restore beside the live database (renamed, npm run restore) cannot replay the dump's oplog, so it holds each collection as it was read during the dump.";

/** The engine's BackupSpec when the stack backs up (`settings.backup`). */
export function mongodbBackup(backup: BackupSettings, tls: boolean, connectionTls: ConnectionTls): BackupSpec {
  const schedule = backup.schedules[DUMP_JOB];
  if (schedule === undefined) {
    throw new Error(`mongodb: the backup settings have no schedule for the job "${DUMP_JOB}" (schedules given: ${Object.keys(backup.schedules).join(', ') || 'none'})`);
  }
  const dump: BackupJob = {
    name: DUMP_JOB,
    description: 'mongodump --oplog of the whole replica set from a secondary, one gzipped archive, uploaded to the object store',
    schedule,
    command: dumpCommand(tls),
    // The password comes from the --config file, never a variable: the URL alone.
    connection: { use: 'backup', urlVariable: BACKUP_URL_VARIABLE },
    env: {},
    upload: { directory: DUMP_JOB },
    // The platform's documents compress well; the archive is a fraction of the data volume.
    scratchSize: '10Gi',
    secretFiles: [{ source: DUMP_CONFIG_SOURCE, mountPath: DUMP_CONFIG_PATH }],
    resources: { requests: { cpu: '250m', memory: '256Mi' }, limits: { cpu: '1', memory: '1Gi' } },
    deadlineSeconds: 3600,
  };
  return {
    tool: 'mongodump',
    // The backup login's URL for the job (`connection.use: 'backup'`); its TLS form on a TLS stack.
    connection: backupConnection(connectionTls),
    // The dumps are plain objects under <path>/dump/: the bucket's lifecycle rule expires them, the job deletes nothing.
    expiresItself: false,
    recoveryPoint: RECOVERY_POINT,
    jobs: [dump],
  };
}

/** Where the archive of one backup is in the bucket: `<path>/dump/<id>/mongodb.archive`, `<id>` the upload's UTC timestamp. */
export function archiveKey(backup: Pick<BackupSettings, 'path'>, id: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._:-]*$/.test(id)) {
    throw new Error(`mongodb: backup id: expected the name of one uploaded dump (its UTC timestamp, e.g. 20260102T013000Z), got ${JSON.stringify(id)}`);
  }
  return `${backup.path}/${DUMP_JOB}/${id}/${ARCHIVE_NAME}`;
}
