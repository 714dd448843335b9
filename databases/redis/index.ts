/**
 * Redis, the platform's cache and short-lived state: API cache, sessions, auth tokens, rate-limit
 * counters and live metrics (key conventions in README.md).
 *
 * Official image `redis` (Debian), which runs the server as uid/gid 999 with its data in `/data`.
 * Users and permissions come from an ACL file rendered from `config/users.acl` (a template of
 * password hashes) and mounted as a secret; nobody connects as the default user.
 */
import { z } from 'zod';
import { memoryBytes, moduleDirectory, type EngineModule, type EngineDescription } from '../engine.ts';

/** The variable that hands the bootstrap the rendered users.acl (digests, never passwords). */
export const USERS_ACL_VARIABLE = 'REDIS_USERS_ACL';

const secrets = [
  { key: 'admin-password', description: 'allixios_admin, all commands and keys: bootstrap and operations' },
  { key: 'app-password', description: 'allixios_app, the platform: its key prefixes only, no admin or dangerous commands' },
  { key: 'monitor-password', description: 'allixios_monitor, PING/INFO/SLOWLOG/LATENCY only: health check and monitoring' },
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
 * soon as the kubelet has refreshed the file. It reaches redis-cli through REDISCLI_AUTH, never
 * its command line.
 */
const REDIS_PING = 'REDISCLI_AUTH="$(cat "$REDIS_MONITOR_PASSWORD_FILE")" redis-cli --no-auth-warning --user allixios_monitor ping 2>&1';

export const redis: EngineModule<typeof optionsSchema> = {
  name: 'redis',
  displayName: 'Redis',
  component: 'cache',
  directory: moduleDirectory(import.meta.url),
  defaultVersion: '7.4.11',
  urlVariable: 'REDIS_URL',
  secrets,
  optionsSchema,
  bootstrap: async () => (await import('../../bootstrap/adapters/redis.ts')).redisEngine,
  // Storage holds the AOF and an RDB snapshot, and briefly a second copy of each while they are
  // rewritten: about three times maxmemory.
  sizing: {
    dev: { storage: '1Gi', resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '500m', memory: '256Mi' } } },
    ephemeral: { storage: '1Gi', resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '250m', memory: '128Mi' } } },
    staging: { storage: '5Gi', resources: { requests: { cpu: '250m', memory: '1Gi' }, limits: { cpu: '1', memory: '1Gi' } } },
    prod: { storage: '20Gi', resources: { requests: { cpu: '1', memory: '4Gi' }, limits: { cpu: '2', memory: '4Gi' } } },
  },
  describe(settings): EngineDescription {
    return {
      image: { repository: 'redis', tag: settings.version },
      ports: [{ name: 'redis', containerPort: 6379 }],
      dataPath: DATA_PATH,
      runAs: { user: 999, group: 999 },
      readOnlyRootFilesystem: true,
      scratchPaths: ['/tmp'],
      args: [
        'redis-server',
        '/etc/redis/redis.conf',
        // Not in redis.conf: Redis changes into `dir` as it reads it, which would tie the file
        // to machines that have /data (see the comment there).
        '--dir',
        DATA_PATH,
        ...maxmemoryArgs(settings.resources.limits.memory, settings.options.maxmemoryRatio),
      ],
      env: {
        // Only the health check reads it (see REDIS_PING).
        REDIS_MONITOR_PASSWORD_FILE: `${SECRETS_PATH}/monitor-password`,
      },
      configFiles: [{ source: 'config/redis.conf', mountPath: '/etc/redis/redis.conf' }],
      secretFiles: [
        // Both ACL passwords of a user while a rotation keeps the previous one (README "Rotating a password").
        { source: 'config/users.acl', mountPath: `${SECRETS_PATH}/users.acl`, bootstrapVariable: USERS_ACL_VARIABLE },
        { source: 'config/monitor-password', mountPath: `${SECRETS_PATH}/monitor-password` },
      ],
      healthCheck: {
        // The password goes through the environment so it never shows in the process list.
        command: ['sh', '-c', `${REDIS_PING} | grep -q '^PONG'`],
        // While Redis loads a large AOF or snapshot it answers PING with -LOADING: alive, not
        // ready. Only no answer at all (or another error) counts as dead.
        liveCommand: ['sh', '-c', `${REDIS_PING} | grep -qE '^(PONG|LOADING)'`],
        intervalSeconds: 10,
        timeoutSeconds: 5,
        failureThreshold: 6,
        // Until it answers at all: loading is alive, so this only bounds a server that never does.
        startupSeconds: 120,
      },
      // On SIGTERM Redis fsyncs the AOF (which already holds every acknowledged write but the
      // last second) and writes a final snapshot; if a large snapshot is cut short, the AOF
      // still restores everything.
      terminationGracePeriodSeconds: 30,
      appConnection: { scheme: 'redis', username: 'allixios_app', passwordSecret: 'app-password', path: '/0' },
      adminConnection: { scheme: 'redis', username: 'allixios_admin', passwordSecret: 'admin-password', path: '/0' },
      // The snapshot and AOF-rewrite forks want `vm.overcommit_memory=1` on the node (Redis warns
      // at start without it). It is node-wide, so it is not set from a privileged pod here: that
      // would change every workload on the node and take the namespace out of the `restricted`
      // Pod Security level. It is a documented node prerequisite (README.md).
      nodeSysctls: [],
    };
  },
};
