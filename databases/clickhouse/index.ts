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
import { memoryBytes, moduleDirectory, type EngineModule, type EngineDescription } from '../engine.ts';

const secrets = [
  { key: 'default-password', description: 'default, the image superuser, reachable from inside the container only (maintenance)' },
  { key: 'admin-password', description: 'allixios_admin, access management and DDL, used by the bootstrap' },
  { key: 'app-password', description: 'allixios_app, the platform: SELECT and INSERT on the allixios database' },
  { key: 'readonly-password', description: 'allixios_readonly, analysts: SELECT on the allixios database' },
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

export const clickhouse: EngineModule<typeof optionsSchema> = {
  name: 'clickhouse',
  displayName: 'ClickHouse',
  component: 'analytics',
  directory: moduleDirectory(import.meta.url),
  defaultVersion: '26.8.2.7',
  urlVariable: 'CLICKHOUSE_URL',
  secrets,
  optionsSchema,
  bootstrap: async () => (await import('../../bootstrap/adapters/clickhouse.ts')).clickhouseEngine,
  sizing: {
    // 512Mi in dev keeps the five dev engines under 3 GB; ClickHouse runs in it with small data.
    dev: { storage: '5Gi', resources: { requests: { cpu: '250m', memory: '384Mi' }, limits: { cpu: '1', memory: '512Mi' } } },
    ephemeral: { storage: '2Gi', resources: { requests: { cpu: '100m', memory: '256Mi' }, limits: { cpu: '500m', memory: '512Mi' } } },
    staging: { storage: '20Gi', resources: { requests: { cpu: '500m', memory: '1Gi' }, limits: { cpu: '2', memory: '2Gi' } } },
    prod: { storage: '100Gi', resources: { requests: { cpu: '2', memory: '8Gi' }, limits: { cpu: '4', memory: '8Gi' } } },
  },
  describe(settings): EngineDescription {
    return {
      image: { repository: 'clickhouse/clickhouse-server', tag: settings.version },
      // HTTP first: the platform's client (@clickhouse/client) speaks HTTP.
      ports: [
        { name: 'http', containerPort: 8123 },
        { name: 'native', containerPort: 9000 },
        { name: 'metrics', containerPort: 9363 },
      ],
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
      ],
      // The users with the SHA-256 digests of their passwords: a secret file, no password in the
      // environment or on the data volume (see the comment at the top of the file).
      secretFiles: [{ source: 'config/users.d/allixios.xml', mountPath: '/etc/clickhouse-server/users.d/allixios.xml' }],
      healthCheck: {
        // /ping answers without authentication once the server accepts queries; the image ships
        // wget (its entrypoint uses it for the same URL) but not curl.
        command: ['sh', '-c', 'wget --no-verbose --tries=1 --spider http://127.0.0.1:8123/ping || exit 1'],
        intervalSeconds: 10,
        timeoutSeconds: 5,
        failureThreshold: 6,
        // A restart loads every table's metadata before /ping answers; large databases take a while.
        startupSeconds: 180,
      },
      terminationGracePeriodSeconds: 60,
      appConnection: { scheme: 'http', username: 'allixios_app', passwordSecret: 'app-password', path: '/allixios' },
      // No database in the path: the bootstrap creates `allixios`, and a client whose default
      // database does not exist yet fails every query with UNKNOWN_DATABASE.
      adminConnection: { scheme: 'http', username: 'allixios_admin', passwordSecret: 'admin-password' },
      nodeSysctls: [],
    };
  },
};
