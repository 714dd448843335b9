/**
 * Redis, the platform's cache and short-lived state: API cache, sessions, auth tokens, rate-limit
 * counters and live metrics (key conventions in README.md).
 *
 * Official image `redis` (Debian), which runs the server as uid/gid 999 with its data in `/data`.
 * Users and permissions come from an ACL file rendered from `config/users.acl` (a template of
 * password hashes) and mounted as a secret; nobody connects as the default user.
 */
import { z } from 'zod';
import { EngineSettingError, memoryBytes, moduleDirectory, TLS_FILES, type ConnectionTls, type EngineModule, type EngineDescription, type TlsSpec } from '../engine.ts';
import { redisBackup } from './backup.ts';
import { defaultSentinels, redisHighAvailability } from './sentinel.ts';

/** The variable that hands the bootstrap the rendered users.acl (digests, never passwords). */
export const USERS_ACL_VARIABLE = 'REDIS_USERS_ACL';

const secrets = [
  { key: 'admin-password', description: 'allixios_admin, all commands and keys: bootstrap and operations' },
  { key: 'app-password', description: 'allixios_app, the platform: its key prefixes only, no admin or dangerous commands' },
  { key: 'monitor-password', description: 'allixios_monitor, PING/INFO/SLOWLOG/LATENCY only: health check and monitoring' },
  { key: 'replication-password', description: 'allixios_replication, PSYNC/REPLCONF/PING only: a replica to its master (masteruser/masterauth)' },
  { key: 'sentinel-password', description: 'allixios_sentinel, the commands Sentinel needs on the Redis members (INFO, ROLE, REPLICAOF, ...)' },
  { key: 'sentinel-peer-password', description: 'allixios_sentinel_peer, a Sentinel to the other Sentinels' },
  { key: 'backup-password', description: 'allixios_backup, REPLCONF/SYNC only (redis-cli --rdb) and on Sentinel where the replicas are: the snapshot job' },
];

const optionsSchema = z.strictObject({
  /**
   * Fraction of the memory limit Redis may fill with data before it evicts. The rest covers
   * what maxmemory does not count, above all the copy-on-write pages of the snapshot and
   * AOF-rewrite forks: "while saving an RDB file on disk or rewriting the AOF log, Redis can use
   * up to 2 times the memory normally used" (Redis documentation, persistence and memory
   * optimisation), plus client buffers and allocator fragmentation. At 0.8 a fork under write
   * load approached twice the dataset and the container was OOM-killed; at most half the limit
   * leaves the fork its copy. (Redis counts the cgroup limit, not the node's memory.)
   */
  maxmemoryRatio: z.number().gt(0).max(0.5).default(0.45),
  /**
   * Sentinels on a Kubernetes stack (default: 3 in prod and staging, 1 elsewhere). Odd, so a
   * majority is well defined; the quorum is their majority.
   */
  sentinels: z
    .number()
    .int()
    .refine((count) => [1, 3, 5, 7].includes(count), { message: 'an odd number of Sentinels from 1 to 7' })
    .optional(),
});

/** maxmemory follows the memory limit, so resizing the container needs no config edit. */
function maxmemoryArgs(memoryLimit: string, ratio: number): string[] {
  const maxmemoryMb = Math.max(16, Math.floor((memoryBytes(memoryLimit) * ratio) / 2 ** 20));
  // Redis reads "mb" as 1024 * 1024 bytes.
  return ['--maxmemory', `${maxmemoryMb}mb`];
}

const DATA_PATH = '/data';

/** Where the engine's secret files are: a directory of their own, refreshed on a rotation. */
const SECRETS_PATH = '/etc/redis/secrets';

/**
 * PING as the monitor user; redis-cli prints the reply (PONG, or the error such as LOADING ...).
 * The password is read from its secret file at every check, not from an environment variable
 * fixed when the container started: after a rotation the check logs in with the new password as
 * soon as the kubelet has refreshed the file. redis-cli reads it from its standard input
 * (`--askpass`, the file redirected): it is on no command line and in no environment variable,
 * so neither the process list nor /proc/<pid>/environ shows it.
 */
const REDIS_PING = 'redis-cli --user allixios_monitor --askpass ping < "$REDIS_MONITOR_PASSWORD_FILE" 2>&1';

/** Where the server's certificate, key and CA are mounted when the stack serves TLS. */
export const TLS_DIRECTORY = '/etc/redis/tls';

/**
 * The admin's password, a secret file mounted only on a TLS stack: the certificate reload runs
 * CONFIG SET, which in users.acl only allixios_admin may (allixios_monitor has PING/INFO/SLOWLOG/
 * LATENCY, allixios_app has no @admin). Whoever can exec into the Redis container can read the
 * AOF and snapshot, every key, already, so the file gives such a person little more.
 */
const ADMIN_PASSWORD_PATH = `${SECRETS_PATH}/admin-password`;

/**
 * The server's TLS settings, as arguments after redis.conf (the last value of a directive wins):
 * TLS only (`port 0` closes the plaintext listener), on the engine's one port. They exist only on
 * a TLS stack, so redis.conf stays as it is for the others, and the bootstrap, which compares
 * redis.conf, never sees them (`bootstrap/adapters/redis-files.ts` classifies them anyway).
 *
 * - `tls-auth-clients no`: clients prove an ACL password, not a client certificate.
 * - `tls-replication yes`: a replica, once there is one, connects over TLS as well.
 * - `tls-ca-cert-file`: Redis requires a CA once replication is over TLS (it is the trust for
 *   the replica's connection to its primary, and for client certificates, which none sends).
 * - `tls-protocols`: TLS 1.2 and 1.3 only, stated because it is relied on.
 */
export function tlsArgs(directory = TLS_DIRECTORY): string[] {
  return [
    ['--port', '0'],
    ['--tls-port', '6379'],
    ['--tls-cert-file', `${directory}/${TLS_FILES.certificate}`],
    ['--tls-key-file', `${directory}/${TLS_FILES.key}`],
    ['--tls-ca-cert-file', `${directory}/${TLS_FILES.ca}`],
    ['--tls-auth-clients', 'no'],
    ['--tls-replication', 'yes'],
    ['--tls-protocols', 'TLSv1.2 TLSv1.3'],
  ].flat();
}

/**
 * redis-cli over TLS to the server in the same container, verifying its certificate with the
 * mounted CA. `-h localhost`: the certificates of both targets name `localhost`, not always 127.0.0.1.
 */
const REDIS_CLI_TLS = `redis-cli --tls --cacert ${TLS_DIRECTORY}/${TLS_FILES.ca} -h localhost`;

/** The health check's PING over TLS (see {@link REDIS_PING}). */
const REDIS_PING_TLS = REDIS_PING.replace('redis-cli ', `${REDIS_CLI_TLS} `);

/**
 * Redis (6.2 and later) reloads its certificate, key and CA when any TLS file setting is set,
 * to the same path too (they are "volatile" configs, applied even when unchanged); open
 * connections keep their session. As allixios_admin, its password read from the mounted file at
 * each run (a rotated one is used as soon as the kubelet refreshed it), on redis-cli's standard
 * input (`--askpass`), never a command line or an environment variable. redis-cli prints the reply and exits 0 even on an error
 * reply, so the `OK` is checked: the Kubernetes target records a reload as done only if it succeeded.
 */
export const TLS_RELOAD_COMMAND = [
  'sh',
  '-c',
  `${REDIS_CLI_TLS} --user allixios_admin --askpass CONFIG SET tls-cert-file ${TLS_DIRECTORY}/${TLS_FILES.certificate} < "$REDIS_ADMIN_PASSWORD_FILE" 2>&1 | grep -qx OK`,
];

const TLS: TlsSpec = { directory: TLS_DIRECTORY, reload: { command: TLS_RELOAD_COMMAND } };

/**
 * The TLS form of the platform's and the bootstrap's URLs: `rediss://`, and the CA bundle's path
 * in `tlsCAFile` (the name MongoDB's URLs use). ioredis reads no CA from a URL, so the client
 * reads that file into `tls: { ca }` (`bootstrap/adapters/redis-adapter.ts`, and the TLS section
 * of this folder's README); the URL names it so that one string says everything a client needs,
 * as PostgreSQL's `sslrootcert`.
 */
export const CONNECTION_TLS: ConnectionTls = { scheme: 'rediss', caFileParameter: 'tlsCAFile' };

export const redis: EngineModule<typeof optionsSchema> = {
  name: 'redis',
  displayName: 'Redis',
  component: 'cache',
  directory: moduleDirectory(import.meta.url),
  defaultVersion: '7.4.11',
  urlVariable: 'REDIS_URL',
  // An RDB snapshot of a replica, hourly (backup.ts).
  backupSchedules: { snapshot: '15 * * * *' },
  // `npm run restore`: into a new, empty target (restore.ts).
  restore: async () => (await import('./restore.ts')).redisEngineRestore(),
  secrets,
  optionsSchema,
  bootstrap: async () => (await import('../../bootstrap/adapters/redis.ts')).redisEngine,
  // Storage holds the AOF and an RDB snapshot, and briefly a second copy of each while they are
  // rewritten: about three times maxmemory.
  sizing: {
    dev: { storage: '1Gi', resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '500m', memory: '256Mi' } } },
    ephemeral: { storage: '1Gi', resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '250m', memory: '128Mi' } } },
    // A master and two replicas under Sentinel (sentinel.ts): one replica may be lost while the
    // master keeps accepting writes (min-replicas-to-write 1). Staging runs prod's topology,
    // where a failover is rehearsed before it happens in prod.
    staging: { storage: '5Gi', replicas: 3, resources: { requests: { cpu: '250m', memory: '1Gi' }, limits: { cpu: '1', memory: '1Gi' } } },
    prod: { storage: '20Gi', replicas: 3, resources: { requests: { cpu: '1', memory: '4Gi' }, limits: { cpu: '2', memory: '4Gi' } } },
  },
  describe(settings): EngineDescription {
    if (settings.environment === 'prod' && settings.replicas < 3) {
      throw new EngineSettingError(
        ['replicas'],
        'at least 3 in prod: a master and two replicas, so one replica may be lost while writes go on (min-replicas-to-write)',
        settings.replicas,
      );
    }
    const args = [
      'redis-server',
      '/etc/redis/redis.conf',
      // Not in redis.conf: Redis changes into `dir` as it reads it, which would tie the file
      // to machines that have /data (see the comment there).
      '--dir',
      DATA_PATH,
      ...maxmemoryArgs(settings.resources.limits.memory, settings.options.maxmemoryRatio),
      ...(settings.tls ? tlsArgs() : []),
    ];
    const healthCheck = {
      // The password goes through the environment so it never shows in the process list.
      command: ['sh', '-c', `${settings.tls ? REDIS_PING_TLS : REDIS_PING} | grep -q '^PONG'`],
      // While Redis loads a large AOF or snapshot it answers PING with -LOADING: alive, not
      // ready. Only no answer at all (or another error) counts as dead.
      liveCommand: ['sh', '-c', `${settings.tls ? REDIS_PING_TLS : REDIS_PING} | grep -qE '^(PONG|LOADING)'`],
      intervalSeconds: 10,
      timeoutSeconds: 5,
      failureThreshold: 6,
      // Until it answers at all: loading is alive, so this only bounds a server that never does.
      startupSeconds: 120,
    };
    // On Kubernetes every stack runs Redis under Sentinel, one member or three (the Docker target
    // ignores both and runs one plain server): clients find the master the same way everywhere.
    const replicated = redisHighAvailability({
      environment: settings.environment,
      members: settings.replicas,
      sentinels: settings.options.sentinels ?? defaultSentinels(settings.environment),
      image: { repository: 'redis', tag: settings.version },
      args,
      ...(settings.tls ? { tls: { directory: TLS_DIRECTORY } } : {}),
      healthCheck,
    });
    return {
      image: { repository: 'redis', tag: settings.version },
      ports: [{ name: 'redis', containerPort: 6379 }],
      dataPath: DATA_PATH,
      runAs: { user: 999, group: 999 },
      readOnlyRootFilesystem: true,
      scratchPaths: ['/tmp'],
      args,
      env: {
        // Only the health check reads it (see REDIS_PING).
        REDIS_MONITOR_PASSWORD_FILE: `${SECRETS_PATH}/monitor-password`,
        // Only the certificate reload reads it (see TLS_RELOAD_COMMAND).
        ...(settings.tls ? { REDIS_ADMIN_PASSWORD_FILE: ADMIN_PASSWORD_PATH } : {}),
      },
      configFiles: [{ source: 'config/redis.conf', mountPath: '/etc/redis/redis.conf' }],
      secretFiles: [
        // Both ACL passwords of a user while a rotation keeps the previous one (README "Rotating a password").
        { source: 'config/users.acl', mountPath: `${SECRETS_PATH}/users.acl`, bootstrapVariable: USERS_ACL_VARIABLE },
        { source: 'config/monitor-password', mountPath: `${SECRETS_PATH}/monitor-password` },
        // Only for the certificate reload (TLS_RELOAD_COMMAND).
        ...(settings.tls ? [{ source: 'config/admin-password', mountPath: ADMIN_PASSWORD_PATH }] : []),
      ],
      healthCheck,
      // On SIGTERM Redis fsyncs the AOF (which already holds every acknowledged write but the
      // last second) and writes a final snapshot; if a large snapshot is cut short, the AOF
      // still restores everything.
      terminationGracePeriodSeconds: 30,
      appConnection: { scheme: 'redis', username: 'allixios_app', passwordSecret: 'app-password', path: '/0', tls: CONNECTION_TLS },
      adminConnection: { scheme: 'redis', username: 'allixios_admin', passwordSecret: 'admin-password', path: '/0', tls: CONNECTION_TLS },
      // The snapshot and AOF-rewrite forks want `vm.overcommit_memory=1` on the node (Redis warns
      // at start without it). It is node-wide, so it is not set from a privileged pod here: that
      // would change every workload on the node and take the namespace out of the `restricted`
      // Pod Security level. It is a documented node prerequisite (README.md).
      nodeSysctls: [],
      ...(settings.tls ? { tls: TLS } : {}),
      ...replicated,
      // An RDB snapshot of a replica on a schedule, uploaded to the object store (backup.ts).
      ...(settings.backup ? { backup: redisBackup(redis, { backup: settings.backup, tls: settings.tls, memoryLimit: settings.resources.limits.memory }) } : {}),
    };
  },
};
