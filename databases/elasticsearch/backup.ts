/**
 * Elasticsearch's backups (issue 17): snapshots into an `s3` snapshot repository on the stack's
 * object store, taken and pruned by the engine's own snapshot lifecycle (SLM). No CronJob: SLM is
 * the scheduler, and the repository and the policy are cluster state the bootstrap keeps like the
 * index templates (`bootstrap/adapters/elasticsearch-plan.ts`), from the settings the stack hands
 * the bootstrap Job in {@link BACKUP_SETTINGS_VARIABLE}.
 *
 * What the members need to reach the store, given here as the engine's `BackupSpec`:
 * - the S3 client's node settings (`s3.client.allixios.endpoint`, `path_style_access`, `region`),
 *   settings variables the Docker distribution reads as settings;
 * - its keys, which Elasticsearch reads only from its keystore (`s3.client.allixios.access_key`,
 *   `secret_key`): an init container in the engine's image writes a keystore into an in-memory
 *   directory from the object store's Secret ({@link keystoreInitScript}), and the engine's start
 *   links `config/elasticsearch.keystore` to it. Under workload identity (EKS IRSA) there are no
 *   keys: the start links the projected token where repository-s3 looks for it.
 *
 * Not drilled here: no Elasticsearch runs on this machine (README.md, "Backups and restore").
 */
import type { estypes } from '@elastic/elasticsearch';
import { z } from 'zod';
import type { BackupEnvValue, BackupInit, BackupSettings, BackupSpec } from '../backup.ts';
import { shellQuote } from '../shell.ts';
import { ARTICLES_INDEX_PATTERN } from './definitions.ts';
import { SEARCH_ANALYTICS_PATTERN } from './mappings/search-analytics.ts';
import { convertCron, CronConversionError } from './slm-schedule.ts';

/** The S3 client's name: its settings are `s3.client.allixios.*`. */
export const S3_CLIENT = 'allixios';
/** The snapshot repository's name. */
export const REPOSITORY = 'allixios-backups';
/** The SLM policy's id. */
export const SLM_POLICY = 'allixios-snapshots';
/** The job name of `backupSchedules`: `allixios:backups.schedules.elasticsearch.snapshot`. */
export const SNAPSHOT_SCHEDULE = 'snapshot';
/** The variable the bootstrap Job reads the repository and policy settings from (no secret in it). */
export const BACKUP_SETTINGS_VARIABLE = 'ALLIXIOS_BACKUP_ELASTICSEARCH';

/** The image's config directory, where Elasticsearch reads its keystore and repository-s3 its token link. */
const CONFIG_PATH = '/usr/share/elasticsearch/config';
/** The init container's in-memory directory (an emptyDir of medium Memory), mounted read-only by the engine. */
export const KEYSTORE_DIRECTORY = '/usr/share/elasticsearch/backup-keystore';
export const KEYSTORE_FILE = `${KEYSTORE_DIRECTORY}/elasticsearch.keystore`;
/** Where repository-s3 reads the web identity token: a link in its config directory (it may read nothing outside it). */
export const WEB_IDENTITY_TOKEN_LINK = `${CONFIG_PATH}/repository-s3/aws-web-identity-token-file`;

/** The variables the init container reads the object store's keys from (filled from the stack's Secret). */
export const ACCESS_KEY_VARIABLE = 'ALLIXIOS_S3_ACCESS_KEY_ID';
export const SECRET_KEY_VARIABLE = 'ALLIXIOS_S3_SECRET_ACCESS_KEY';

/**
 * The platform's data: the articles' versioned indices (`articles_v<N>`, the alias is not
 * snapshotted as an index name) and the search-analytics data streams. The articles can be
 * rebuilt from PostgreSQL (a reindex from the source of truth); the search-analytics stream
 * cannot: it exists nowhere else.
 */
export const SNAPSHOT_INDICES = [ARTICLES_INDEX_PATTERN, SEARCH_ANALYTICS_PATTERN] as const;

/** What the stack hands the bootstrap in {@link BACKUP_SETTINGS_VARIABLE}: where the repository is, the schedule, the retention. */
export interface ElasticsearchBackupSettings {
  bucket: string;
  /** The engine's prefix in the bucket (`BackupSettings.path`): the repository's `base_path`. */
  basePath: string;
  /** The 5-field cron expression (UTC) of the snapshots. */
  schedule: string;
  retention: { count: number; days: number };
}

/** The value of {@link BACKUP_SETTINGS_VARIABLE} for a stack's backup settings: what the lead's bootstrap Job sets. */
export function backupSettingsValue(backup: BackupSettings): string {
  const value: ElasticsearchBackupSettings = {
    bucket: backup.objectStore.bucket,
    basePath: backup.path,
    schedule: scheduleOf(backup),
    retention: { count: backup.retention.count, days: backup.retention.days },
  };
  return JSON.stringify(value);
}

const settingsSchema = z.strictObject({
  bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name (3 to 63 lower-case letters, digits, dots and hyphens)'),
  basePath: z
    .string()
    .min(1)
    .refine((path) => !path.startsWith('/') && !path.endsWith('/'), 'a prefix without a leading or trailing slash'),
  schedule: z.string().min(1),
  retention: z.strictObject({ count: z.number().int().min(1), days: z.number().int().min(1) }),
});

/**
 * The settings the bootstrap read from {@link BACKUP_SETTINGS_VARIABLE}: undefined when unset (the
 * stack does not back up); a message naming the variable, the key, the expectation and what was
 * found when malformed. No secret is in it, so values may be quoted.
 */
export function parseBackupSettings(value: string | undefined): ElasticsearchBackupSettings | undefined {
  if (value === undefined || value === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (error) {
    throw new Error(`${BACKUP_SETTINGS_VARIABLE} is not valid JSON (${(error as Error).message}): expected {"bucket","basePath","schedule","retention":{"count","days"}}`, {
      cause: error,
    });
  }
  const result = settingsSchema.safeParse(parsed);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const path = issue.path.join('.') || '(the value)';
      const received = issue.path.reduce<unknown>((node, key) => (node as Record<PropertyKey, unknown> | undefined)?.[key as PropertyKey], parsed);
      return `${path}: ${issue.message}, got ${JSON.stringify(received) ?? 'nothing'}`;
    });
    throw new Error(`${BACKUP_SETTINGS_VARIABLE}: ${problems.join('; ')}`);
  }
  try {
    convertCron(result.data.schedule);
  } catch (error) {
    throw new Error(`${BACKUP_SETTINGS_VARIABLE}: schedule: ${(error as Error).message}`, { cause: error });
  }
  return result.data;
}

/** The repository as `PUT _snapshot/<name>` takes it; the client's endpoint, region and keys are node settings, not here. */
export function snapshotRepository(settings: ElasticsearchBackupSettings): estypes.SnapshotS3Repository {
  return { type: 's3', settings: { bucket: settings.bucket, base_path: settings.basePath, client: S3_CLIENT } };
}

/**
 * The SLM policy:
 * - `schedule`: the stack's cron expression in Elasticsearch's syntax (UTC, seconds first);
 * - `name`: `<allixios-{now/d}>`, to which SLM adds a unique suffix per snapshot;
 * - `config`: the platform's indices and data streams only, without the cluster's global state
 *   (templates, users and settings are the bootstrap's and the stack's, not data); a snapshot
 *   missing a shard fails rather than counting as a backup (`partial: false`);
 * - `retention`: snapshots older than the stack's `days` are deleted (`expire_after`), but the
 *   newest `count` are always kept whatever their age (`min_count`: a schedule that stopped working
 *   never empties the repository), and never more than the schedule takes in `days`
 *   (`max_count`), at least `count`.
 */
export function slmPolicy(settings: ElasticsearchBackupSettings): estypes.SlmPolicy {
  const { schedule, runsPerDay } = convertCron(settings.schedule);
  return {
    name: '<allixios-{now/d}>',
    schedule,
    repository: REPOSITORY,
    config: { indices: [...SNAPSHOT_INDICES], include_global_state: false, ignore_unavailable: false, partial: false },
    retention: {
      expire_after: `${settings.retention.days}d`,
      min_count: settings.retention.count,
      max_count: Math.max(settings.retention.count, settings.retention.days * runsPerDay),
    },
  };
}

/** The snapshot schedule of the stack's settings, converted now so a bad one fails the preview, naming the key. */
function scheduleOf(backup: BackupSettings): string {
  const schedule = backup.schedules[SNAPSHOT_SCHEDULE];
  const key = `allixios:backups.schedules.elasticsearch.${SNAPSHOT_SCHEDULE}`;
  if (schedule === undefined) throw new Error(`elasticsearch: ${key}: expected a cron expression for the snapshots, got none`);
  try {
    convertCron(schedule);
  } catch (error) {
    if (error instanceof CronConversionError) throw new Error(`elasticsearch: ${key}: ${error.message}`, { cause: error });
    throw error;
  }
  return schedule;
}

/**
 * The init container's script: a fresh keystore in {@link KEYSTORE_DIRECTORY} (`ES_PATH_CONF`
 * points the tool there) holding the object store's keys and `bootstrap.password`, which the
 * image's entrypoint would otherwise add to the keystore it finds, and cannot on a read-only
 * mount. Every value goes through standard input (`add --stdin`, from `printf`, a shell builtin),
 * never a command line. No keystore password: the file lives in memory, in the pod only (an
 * emptyDir of medium Memory), and whoever can read it there can read the variables it was made
 * from; a password would have to sit beside it for Elasticsearch to start. A keystore a previous
 * run of the init container left (a pod restarted in place) is replaced, not prompted about.
 */
export function keystoreInitScript(): string {
  const add = (variable: string, setting: string) => `printf '%s\\n' "$${variable}" | elasticsearch-keystore add --stdin ${setting}`;
  return [
    'set -eu',
    // No apostrophe in these messages: bash removes it as a quote inside "${...:?...}".
    `: "\${${ACCESS_KEY_VARIABLE}:?the access key of the object store is not set (the backup Secret of the stack)}"`,
    `: "\${${SECRET_KEY_VARIABLE}:?the secret key of the object store is not set (the backup Secret of the stack)}"`,
    ': "${ELASTIC_PASSWORD:?the elastic bootstrap password is not set}"',
    'rm -f "$ES_PATH_CONF/elasticsearch.keystore"',
    'elasticsearch-keystore create',
    add('ELASTIC_PASSWORD', 'bootstrap.password'),
    add(ACCESS_KEY_VARIABLE, `s3.client.${S3_CLIENT}.access_key`),
    add(SECRET_KEY_VARIABLE, `s3.client.${S3_CLIENT}.secret_key`),
    // Names only, for the init container's log.
    'elasticsearch-keystore list',
  ].join('\n');
}

/** The init container: the keystore, from the stack's Secret; none under workload identity. */
export function keystoreInit(): BackupInit {
  return {
    command: ['bash', '-c', keystoreInitScript(), 'elasticsearch-keystore-init'],
    env: {
      ES_PATH_CONF: KEYSTORE_DIRECTORY,
      ELASTIC_PASSWORD: { secret: 'elastic-password' },
      [ACCESS_KEY_VARIABLE]: { objectStore: 'accessKeyId' },
      [SECRET_KEY_VARIABLE]: { objectStore: 'secretAccessKey' },
    },
    directory: KEYSTORE_DIRECTORY,
  };
}

/**
 * What the engine's start does first when the stack backs up, before the image's entrypoint:
 * - with keys: link `config/elasticsearch.keystore` to the init container's keystore (when it is
 *   there: a target without init containers leaves the image's own). The
 *   entrypoint then finds a keystore that holds `bootstrap.password` and writes nothing, and
 *   Elasticsearch reads it in place (it writes only to upgrade one made by an older version);
 * - under workload identity: link repository-s3's token file to the projected token the
 *   cloud's webhook mounts (`AWS_WEB_IDENTITY_TOKEN_FILE`), as Elastic documents for IRSA; without
 *   the variable the node still starts (search must not stop for a backup setting) and says why
 *   its snapshots will fail.
 */
export function backupStartLines(backup: BackupSettings): string[] {
  return backup.objectStore.credentials.kind === 'secret' ? [...KEYSTORE_LINK_LINES] : [...WEB_IDENTITY_LINK_LINES];
}

/**
 * With keys. On Kubernetes the init container ran (a pod does not start without it); a target that
 * runs no init container (Docker) leaves the image's own keystore, and the node starts without keys.
 */
export const KEYSTORE_LINK_LINES: readonly string[] = [
  `if [ -f ${shellQuote(KEYSTORE_FILE)} ]; then`,
  `  ln -sfn ${shellQuote(KEYSTORE_FILE)} ${CONFIG_PATH}/elasticsearch.keystore`,
  'else',
  `  echo "allixios: no keystore at ${KEYSTORE_FILE} (no init container ran): the snapshot repository has no keys, snapshots will fail" >&2`,
  'fi',
];

/** Under workload identity. */
export const WEB_IDENTITY_LINK_LINES: readonly string[] = [
  'if [ -n "${AWS_WEB_IDENTITY_TOKEN_FILE:-}" ]; then',
  `  mkdir -p ${CONFIG_PATH}/repository-s3 && ln -sfn "$AWS_WEB_IDENTITY_TOKEN_FILE" ${WEB_IDENTITY_TOKEN_LINK}`,
  'else',
  '  echo "allixios: AWS_WEB_IDENTITY_TOKEN_FILE is not set: the snapshot repository has no credentials, snapshots will fail (workload identity)" >&2',
  'fi',
];

/** What a restore gets back and what is lost, for the render and the README. */
export const RECOVERY_POINT =
  'the last successful SLM snapshot (nightly by default) of the articles indices and the search-analytics data streams. ' +
  'Search analytics written since are lost for good: they exist nowhere else. ' +
  'Articles indexed since are not lost: they are rebuilt from PostgreSQL, the source of truth, by reindexing.';

/** The engine's BackupSpec when the stack backs up. */
export function elasticsearchBackup(backup: BackupSettings): BackupSpec {
  // Validated now, so a schedule SLM cannot run fails the preview rather than the bootstrap.
  scheduleOf(backup);
  const memberEnv: Record<string, BackupEnvValue> = {
    // A URL with its scheme: Elasticsearch 9 takes the protocol from it (`protocol` is deprecated).
    [`s3.client.${S3_CLIENT}.endpoint`]: { objectStore: 'endpoint' },
    [`s3.client.${S3_CLIENT}.path_style_access`]: { objectStore: 'forcePathStyle' },
    [`s3.client.${S3_CLIENT}.region`]: { objectStore: 'region' },
  };
  return {
    tool: 'Elasticsearch snapshots (repository-s3) on a snapshot lifecycle policy (SLM)',
    // SLM's retention deletes the snapshots that expire (and only it knows which files they share).
    expiresItself: true,
    recoveryPoint: RECOVERY_POINT,
    // SLM schedules and prunes the snapshots itself: no job.
    jobs: [],
    memberEnv,
    ...(backup.objectStore.credentials.kind === 'secret' ? { memberInit: keystoreInit() } : {}),
    // The bootstrap applies the repository and the policy from these settings (no secret in them).
    bootstrapEnv: { [BACKUP_SETTINGS_VARIABLE]: backupSettingsValue(backup) },
  };
}
