/**
 * ClickHouse, the platform's analytics store: page views, clicks, search and revenue events.
 *
 * Official image `clickhouse/clickhouse-server`. Its entrypoint runs as the container user (101,
 * the image's `clickhouse`), creates nothing outside the data volume once the logs go to the
 * console, and writes a `default-user.xml` into users.d unless `CLICKHOUSE_SKIP_USER_SETUP=1`:
 * that variable keeps the root filesystem read-only and the `default` user as users.d/allixios.xml
 * defines it (local only, the digest of a secret as its password).
 *
 * The database `allixios` is created by the bootstrap (as allixios_admin), not by the image's
 * `CLICKHOUSE_DB`: that path starts a temporary server and connects as `default` with
 * `CLICKHOUSE_PASSWORD`, which would put the default user's password in a second variable and
 * double the first start for something the bootstrap does idempotently anyway.
 */
import { z } from 'zod';
import { memoryBytes, moduleDirectory, TLS_FILES, type ConnectionTls, type EngineModule, type EngineDescription, type PortSpec, type TlsSpec } from '../engine.ts';
import { clickhouseBackup, collectionConfig, SERVER_COLLECTION_PATH } from './backup.ts';
import { keeperCompanion } from './keeper.ts';
import { clickhouseHighAvailability, REPLICATION_SECRETS } from './replication.ts';

const secrets = [
  { key: 'default-password', description: 'default, the image superuser, reachable from inside the container only (maintenance)' },
  { key: 'admin-password', description: 'allixios_admin, access management and DDL, used by the bootstrap' },
  { key: 'app-password', description: 'allixios_app, the platform: SELECT and INSERT on the allixios database' },
  { key: 'readonly-password', description: 'allixios_readonly, analysts: SELECT on the allixios database' },
  { key: 'backup-password', description: 'allixios_backup, the backup jobs: BACKUP of the allixios database to the store of the named collection allixios_backups, nothing else' },
  // Used by a stack of several members only (replication.ts); generated everywhere, like every secret.
  ...REPLICATION_SECRETS,
];

const optionsSchema = z.strictObject({
  /**
   * Share of the memory limit one query of allixios_app or allixios_readonly may use. The server
   * as a whole stops at 0.8 (config.d), so 0.5 leaves room for ingestion while a report runs.
   */
  queryMemoryRatio: z.number().gt(0).max(0.8).default(0.5),
});

/** Per-query memory cap in bytes, read by users.d/allixios.xml through from_env. */
function queryMaxMemoryBytes(memoryLimit: string, ratio: number): string {
  return String(Math.floor(memoryBytes(memoryLimit) * ratio));
}

/**
 * Where the server's certificate, key and CA are mounted when the stack serves TLS; the paths in
 * config.d/tls.xml name files of this directory.
 */
export const TLS_DIRECTORY = '/etc/clickhouse-server/tls';

/**
 * No reload command: ClickHouse watches the certificate and key files named in config.d
 * (ClickHouse/ClickHouse#52030, 23.8 and later) and reloads them itself when they change, as it
 * does its config files. On Kubernetes the kubelet swaps the Secret volume's files, which is such
 * a change; on Docker a renewed certificate replaces the container.
 */
const TLS: TlsSpec = { directory: TLS_DIRECTORY };

/** HTTPS: the URL's TLS form is its scheme; the bootstrap's client gets the CA bundle as bytes. */
const CONNECTION_TLS: ConnectionTls = { scheme: 'https' };

/**
 * The listeners: HTTP first, the platform's client (@clickhouse/client) speaks HTTP. On a TLS
 * stack their TLS counterparts take their place (config.d/tls.xml closes the plaintext ones).
 */
function ports(tls: boolean): PortSpec[] {
  const metrics = { name: 'metrics', containerPort: 9363 };
  if (tls) return [{ name: 'https', containerPort: 8443 }, { name: 'native-secure', containerPort: 9440 }, metrics];
  return [{ name: 'http', containerPort: 8123 }, { name: 'native', containerPort: 9000 }, metrics];
}

/**
 * /ping answers without authentication once the server accepts queries. The image ships GNU wget
 * (its entrypoint uses it for the same URL) but not curl. Over TLS, wget verifies the server's
 * certificate with the mounted CA and the name `localhost`, which the certificates of both targets
 * carry; `-4` because the server listens on IPv4 only.
 */
function pingCommand(tls: boolean): string {
  if (!tls) return 'wget --no-verbose --tries=1 --spider http://127.0.0.1:8123/ping || exit 1';
  return `wget -4 --no-verbose --tries=1 --spider --ca-certificate=${TLS_DIRECTORY}/${TLS_FILES.ca} https://localhost:8443/ping || exit 1`;
}

export const clickhouse: EngineModule<typeof optionsSchema> = {
  name: 'clickhouse',
  displayName: 'ClickHouse',
  component: 'analytics',
  directory: moduleDirectory(import.meta.url),
  defaultVersion: '26.8.2.7',
  urlVariable: 'CLICKHOUSE_URL',
  // BACKUP ... TO S3: a full backup on Sundays, an incremental one on its base the other nights (backup.ts).
  backupSchedules: { full: '0 3 * * 0', incremental: '0 3 * * 1-6' },
  // `npm run restore`: into a new, empty target (restore.ts).
  restore: async () => (await import('./restore.ts')).clickhouseEngineRestore(),
  secrets,
  optionsSchema,
  bootstrap: async () => (await import('../../bootstrap/adapters/clickhouse.ts')).clickhouseEngine,
  sizing: {
    // 512Mi in dev keeps the five dev engines under 3 GB; ClickHouse runs in it with small data.
    dev: { storage: '5Gi', resources: { requests: { cpu: '250m', memory: '384Mi' }, limits: { cpu: '1', memory: '512Mi' } } },
    ephemeral: { storage: '2Gi', resources: { requests: { cpu: '100m', memory: '256Mi' }, limits: { cpu: '500m', memory: '512Mi' } } },
    // Two members in staging and prod, coordinated by a Keeper ensemble of three beside them
    // (keeper.ts); databases/clickhouse/README.md, "Replicas", says what two members buy.
    staging: { storage: '20Gi', replicas: 2, resources: { requests: { cpu: '500m', memory: '1Gi' }, limits: { cpu: '2', memory: '2Gi' } } },
    prod: { storage: '100Gi', replicas: 2, resources: { requests: { cpu: '2', memory: '8Gi' }, limits: { cpu: '4', memory: '8Gi' } } },
  },
  describe(settings): EngineDescription {
    return {
      image: { repository: 'clickhouse/clickhouse-server', tag: settings.version },
      ports: ports(settings.tls),
      dataPath: '/var/lib/clickhouse',
      runAs: { user: 101, group: 101 },
      readOnlyRootFilesystem: true,
      // The entrypoint copies users.xml to /tmp to find out whether users.d changes `default`;
      // everything the server writes (tmp_path, user_files, access/, preprocessed_configs/) is under
      // the data path.
      scratchPaths: ['/tmp'],
      env: {
        CLICKHOUSE_SKIP_USER_SETUP: '1',
        CLICKHOUSE_QUERY_MAX_MEMORY_BYTES: queryMaxMemoryBytes(settings.resources.limits.memory, settings.options.queryMemoryRatio),
      },
      configFiles: [
        // Takes the place of the image's file of that name; see the comment at the top of the file.
        { source: 'config/config.d/allixios.xml', mountPath: '/etc/clickhouse-server/config.d/docker_related_config.xml' },
        // HTTPS and secure native only, plaintext ports closed (see the file).
        ...(settings.tls ? [{ source: 'config/config.d/tls.xml', mountPath: '/etc/clickhouse-server/config.d/tls.xml' }] : []),
        // The object store of the backups as a named collection, its values from the environment (backup.ts).
        ...(settings.backup
          ? [{ source: 'config/config.d/backup.xml', content: collectionConfig(settings.backup.objectStore.credentials.kind), mountPath: SERVER_COLLECTION_PATH }]
          : []),
      ],
      // The users with the SHA-256 digests of their passwords: a secret file, no password in the
      // environment or on the data volume (see the comment at the top of the file).
      secretFiles: [{ source: 'config/users.d/allixios.xml', mountPath: '/etc/clickhouse-server/users.d/allixios.xml' }],
      healthCheck: {
        command: ['sh', '-c', pingCommand(settings.tls)],
        intervalSeconds: 10,
        timeoutSeconds: 5,
        failureThreshold: 6,
        // A restart loads every table's metadata before /ping answers; large databases take a while.
        startupSeconds: 180,
      },
      terminationGracePeriodSeconds: 60,
      appConnection: { scheme: 'http', username: 'allixios_app', passwordSecret: 'app-password', path: '/allixios', tls: CONNECTION_TLS },
      // No database in the path: the bootstrap creates `allixios`, and a client whose default
      // database does not exist yet fails every query with UNKNOWN_DATABASE.
      adminConnection: { scheme: 'http', username: 'allixios_admin', passwordSecret: 'admin-password', tls: CONNECTION_TLS },
      nodeSysctls: [],
      ...(settings.tls ? { tls: TLS } : {}),
      // BACKUP ... TO S3 on a schedule, a full backup and incremental ones on it (backup.ts).
      ...(settings.backup ? { backup: clickhouseBackup(clickhouse, { backup: settings.backup, tls: settings.tls }) } : {}),
      // Several members (Kubernetes; the Docker target runs one): Replicated databases over
      // ClickHouse Keeper (replication.ts), which runs beside them as a companion (keeper.ts). One
      // member is the plain server above, as on Docker.
      ...(settings.replicas > 1
        ? {
            highAvailability: clickhouseHighAvailability({ replicas: settings.replicas, tls: settings.tls, tlsDirectory: TLS_DIRECTORY }),
            companions: [keeperCompanion({ environment: settings.environment, version: settings.version, tls: settings.tls })],
          }
        : {}),
    };
  },
};
