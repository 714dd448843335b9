/**
 * Redis replicated under Sentinel on Kubernetes: one master and its replicas (the engine's
 * StatefulSet), and the Sentinels that watch them, elect a new master when it fails and tell
 * clients where it is (a companion workload, `CompanionSpec`). Failure detection, the vote, the
 * promotion and the reconfiguration of the others are Sentinel's; what this module adds is the
 * configuration and the two start scripts (`config/redis-member.sh`, `config/sentinel.sh`), which
 * only decide how a process comes up. Why each value: README.md, "Replication and Sentinel".
 *
 * Passwords: the Redis side's users (`allixios_replication` for `masteruser`, `allixios_sentinel`
 * for Sentinel) are in `config/users.acl` as digests; Sentinel's own users in
 * `config/sentinel-users.acl`, digests too. The two outgoing passwords that must be plain
 * (`masterauth`, Sentinel's `auth-pass` and `sentinel-pass`) are secret files
 * (`config/replication.conf`, `config/sentinel-auth.conf`).
 */
import { TLS_FILES, type CompanionSpec, type ComputeResources, type Environment, type HealthCheck, type HighAvailabilitySpec } from '../engine.ts';

/** The master's name under Sentinel (`sentinel monitor <name>`); clients ask for it. */
export const MASTER_NAME = 'allixios';
/** Sentinel's port (Redis's convention). */
export const SENTINEL_PORT = 26379;
/** The engine's port. */
export const REDIS_PORT = 6379;

/** Where the start scripts are mounted, in the Redis members and in the Sentinels. */
export const MEMBER_SCRIPT = '/etc/redis/ha/redis-member.sh';
export const SENTINEL_SCRIPT = '/etc/redis/sentinel/sentinel.sh';
/** Sentinel's configuration template (a ConfigMap) and the directory it runs from: its volume, where it keeps its rewritten copy. */
export const SENTINEL_TEMPLATE = '/etc/redis/sentinel/sentinel.conf';
export const SENTINEL_CONFIG_DIR = '/data';
/**
 * Sentinel's volume: its configuration, a few kilobytes. Most provisioners round a claim up to
 * their smallest volume (often 1Gi).
 */
export const SENTINEL_VOLUME_SIZE = '128Mi';
/** Sentinel's secret files: its users, its outgoing passwords, the monitor's password. */
export const SENTINEL_SECRETS = '/etc/redis/sentinel-secrets';
/** The replication user's password for `masterauth`, beside the engine's other secret files. */
export const REPLICATION_CONF = '/etc/redis/secrets/replication.conf';

/**
 * Sentinel's timing. `down-after-milliseconds` 5 s: a master that answers nothing valid for 5 s is
 * subjectively down (Redis serves in microseconds; its longest stalls, a fork or an fsync behind a
 * slow disk, stay well below). `failover-timeout` 60 s: a failover that stalls is retried by
 * another Sentinel after it (the default, 3 minutes, only delays a retry). `parallel-syncs` 1:
 * after a failover the replicas resynchronise with the new master one at a time, so the others
 * keep serving reads.
 */
export const SENTINEL_TIMING = { downAfterMilliseconds: 5000, failoverTimeoutMilliseconds: 60000, parallelSyncs: 1 } as const;

/**
 * `min-replicas-max-lag`, seconds: a replica counts for `min-replicas-to-write` while its last
 * acknowledgement (sent every second) is at most this old. 4 s, below Sentinel's 5 s
 * `down-after-milliseconds`: a master cut off from its replicas refuses writes before the
 * Sentinels on the other side can have promoted another, so the two never both accept writes
 * for long; and at most about this many seconds of writes accepted by an isolated master are lost
 * when it comes back as a replica.
 */
export const MIN_REPLICAS_MAX_LAG = 4;

/**
 * `min-replicas-to-write` for a cluster of `members`: half of them, rounded down (1 of 3, 2 of 5),
 * so a write the master accepts reaches the master and enough replicas to make a majority, while one
 * replica may be lost without stopping writes. With fewer than 3 members, 0: a single replica
 * required for every write would turn each of its restarts into a write outage.
 */
export function minReplicasToWrite(members: number): number {
  return members >= 3 ? Math.floor(members / 2) : 0;
}

/** The Sentinels that must agree a master is down (`quorum`): a majority of them. */
export function sentinelQuorum(sentinels: number): number {
  return Math.floor(sentinels / 2) + 1;
}

/** The Sentinels a stack runs by default: three (a majority survives one lost) where there are replicas to fail over to, one elsewhere (clients still find the master through it). */
export function defaultSentinels(environment: Environment): number {
  return environment === 'prod' || environment === 'staging' ? 3 : 1;
}

export interface SentinelConfInput {
  /** How many Sentinels there are: the quorum is their majority. */
  sentinels: number;
  port?: number;
  /** The TLS directory (`TLS_FILES`) when the stack serves TLS: Sentinel then listens, and connects to Redis and to the other Sentinels, over TLS only. */
  tls?: { directory: string };
  aclFile?: string;
  /** The writable directory Sentinel runs from (its `dir`). */
  directory?: string;
  timing?: { downAfterMilliseconds: number; failoverTimeoutMilliseconds: number; parallelSyncs: number };
}

/**
 * Sentinel's configuration template: `config/sentinel.sh` fills `@MYID@`, `@ANNOUNCE_HOST@`,
 * `@ANNOUNCE_PORT@`, `@MASTER_HOST@` and `@MASTER_PORT@`, and appends the secret lines of
 * `config/sentinel-auth.conf` (`auth-pass`, `sentinel-pass`).
 */
export function sentinelConf(input: SentinelConfInput): string {
  const port = input.port ?? SENTINEL_PORT;
  const timing = input.timing ?? SENTINEL_TIMING;
  const tls = input.tls
    ? [
        '# TLS only: no plaintext listener; connections to Redis and to the other Sentinels over TLS too.',
        'port 0',
        `tls-port ${port}`,
        `tls-cert-file ${input.tls.directory}/${TLS_FILES.certificate}`,
        `tls-key-file ${input.tls.directory}/${TLS_FILES.key}`,
        `tls-ca-cert-file ${input.tls.directory}/${TLS_FILES.ca}`,
        'tls-auth-clients no',
        'tls-replication yes',
        'tls-protocols "TLSv1.2 TLSv1.3"',
      ]
    : [`port ${port}`];
  return [
    '# Redis Sentinel for Allixios, rendered by databases/redis/sentinel.ts (why: databases/redis/README.md).',
    '# config/sentinel.sh fills the @...@ values and appends the secret lines, then Sentinel rewrites its copy as it learns.',
    'bind * -::*',
    // Sentinel's default; the ACL below is what protects it (the default user is off).
    'protected-mode no',
    ...tls,
    'daemonize no',
    'logfile ""',
    'loglevel notice',
    `dir ${input.directory ?? SENTINEL_CONFIG_DIR}`,
    `aclfile ${input.aclFile ?? `${SENTINEL_SECRETS}/users.acl`}`,
    'acllog-max-len 128',
    // Members and Sentinels by their DNS names (names the certificates carry), and clients told names, not pod IPs.
    'sentinel resolve-hostnames yes',
    'sentinel announce-hostnames yes',
    'sentinel myid @MYID@',
    'sentinel announce-ip @ANNOUNCE_HOST@',
    'sentinel announce-port @ANNOUNCE_PORT@',
    // No script, and nobody may set one at run time.
    'sentinel deny-scripts-reconfig yes',
    'sentinel sentinel-user allixios_sentinel_peer',
    `sentinel monitor ${MASTER_NAME} @MASTER_HOST@ @MASTER_PORT@ ${sentinelQuorum(input.sentinels)}`,
    `sentinel auth-user ${MASTER_NAME} allixios_sentinel`,
    `sentinel down-after-milliseconds ${MASTER_NAME} ${timing.downAfterMilliseconds}`,
    `sentinel failover-timeout ${MASTER_NAME} ${timing.failoverTimeoutMilliseconds}`,
    `sentinel parallel-syncs ${MASTER_NAME} ${timing.parallelSyncs}`,
    '',
  ].join('\n');
}

/** The arguments a member adds to the engine's: the replication user's password file and the isolated master's bound. */
export function memberArgs(members: number, replicationConf = REPLICATION_CONF): string[] {
  return ['--include', replicationConf, '--min-replicas-to-write', String(minReplicasToWrite(members)), '--min-replicas-max-lag', String(MIN_REPLICAS_MAX_LAG)];
}

/** `host:port` of every member of a workload `<name>-<ordinal>.<headless>.<domain>`, the domain a variable Kubernetes expands. */
function addresses(name: string, headless: string, count: number, port: number, domainVariable: string): string {
  return Array.from({ length: count }, (_, ordinal) => `${name}-${ordinal}.${headless}.$(${domainVariable}):${port}`).join(' ');
}

/** The variable holding the namespace's DNS domain (a member value). */
const DOMAIN_VARIABLE = 'ALLIXIOS_DOMAIN';

export interface RedisHighAvailabilityInput {
  environment: Environment;
  /** Redis members (the StatefulSet's replicas). */
  members: number;
  sentinels: number;
  /** The Redis image (Sentinel is the same binary). */
  image: { repository: string; tag: string };
  /** The engine's arguments (`redis-server <config> ...`), which the member script runs. */
  args: string[];
  /** The TLS directory when the stack serves TLS. */
  tls?: { directory: string };
  /** The engine's health-check timing and the monitor password file variable it reads. */
  healthCheck: Pick<HealthCheck, 'intervalSeconds' | 'timeoutSeconds' | 'failureThreshold' | 'startupSeconds'>;
}

const SENTINEL_RESOURCES: Record<Environment, ComputeResources> = {
  dev: { requests: { cpu: '25m', memory: '32Mi' }, limits: { cpu: '100m', memory: '64Mi' } },
  ephemeral: { requests: { cpu: '25m', memory: '32Mi' }, limits: { cpu: '100m', memory: '64Mi' } },
  staging: { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '250m', memory: '128Mi' } },
  prod: { requests: { cpu: '100m', memory: '64Mi' }, limits: { cpu: '500m', memory: '128Mi' } },
};

/**
 * The engine's `highAvailability` and its Sentinel companion. Names follow the targets'
 * conventions: members `redis-<n>.redis-headless`, Sentinels `redis-sentinel-<n>.redis-sentinel-headless`
 * (`stacks/kubernetes/companion.ts`), under the namespace's domain.
 */
export function redisHighAvailability(input: RedisHighAvailabilityInput): { highAvailability: HighAvailabilitySpec; companions: CompanionSpec[] } {
  const cliTls = input.tls ? `--tls --cacert ${input.tls.directory}/${TLS_FILES.ca}` : '';
  const shared = {
    ALLIXIOS_REDIS_MEMBERS: addresses('redis', 'redis-headless', input.members, REDIS_PORT, DOMAIN_VARIABLE),
    ALLIXIOS_SENTINELS: addresses('redis-sentinel', 'redis-sentinel-headless', input.sentinels, SENTINEL_PORT, DOMAIN_VARIABLE),
    ALLIXIOS_MASTER_NAME: MASTER_NAME,
    ALLIXIOS_REDIS_CLI_TLS: cliTls,
  };
  const timing = { ...input.healthCheck };
  const highAvailability: HighAvailabilitySpec = {
    manager: 'Redis Sentinel',
    command: ['sh', MEMBER_SCRIPT, 'start'],
    args: [...input.args, ...memberArgs(input.members)],
    env: shared,
    memberEnv: { [DOMAIN_VARIABLE]: 'namespaceDomain', REDIS_ANNOUNCE: { address: REDIS_PORT } },
    configFiles: [{ source: 'config/redis-member.sh', mountPath: MEMBER_SCRIPT }],
    secretFiles: [{ source: 'config/replication.conf', mountPath: REPLICATION_CONF }],
    // Replication uses the engine's own port: nothing more to open.
    ports: [],
    healthCheck: { ...timing, command: ['sh', MEMBER_SCRIPT, 'ready'], liveCommand: ['sh', MEMBER_SCRIPT, 'live'] },
  };
  const sentinel: CompanionSpec = {
    name: 'sentinel',
    description: `Redis Sentinel: ${input.sentinels} watching the master "${MASTER_NAME}" (quorum ${sentinelQuorum(input.sentinels)}), failing over to a replica, and telling clients where the master is`,
    component: 'cache-sentinel',
    image: input.image,
    command: ['sh', SENTINEL_SCRIPT, 'start'],
    replicas: input.sentinels,
    // Clients ask Sentinel for the master; Redis members ask it at start; Sentinels talk to each other.
    ports: [{ name: 'sentinel', containerPort: SENTINEL_PORT, from: ['clients', 'engine', 'peers'] }],
    connectsToEngine: true,
    runAs: { user: 999, group: 999 },
    resources: SENTINEL_RESOURCES[input.environment],
    env: {
      ...shared,
      SENTINEL_TEMPLATE,
      SENTINEL_AUTH_FILE: `${SENTINEL_SECRETS}/sentinel-auth.conf`,
      SENTINEL_CONFIG_DIR,
      REDIS_MONITOR_PASSWORD_FILE: `${SENTINEL_SECRETS}/monitor-password`,
      // Which certificate `sentinel.sh reload` compares with the one Sentinel started with.
      ...(input.tls ? { SENTINEL_TLS_CERTIFICATE: `${input.tls.directory}/${TLS_FILES.certificate}` } : {}),
    },
    memberEnv: { [DOMAIN_VARIABLE]: 'namespaceDomain', SENTINEL_ANNOUNCE: { address: SENTINEL_PORT } },
    configFiles: [
      { source: 'config/sentinel.sh', mountPath: SENTINEL_SCRIPT },
      {
        source: 'config/sentinel.conf',
        mountPath: SENTINEL_TEMPLATE,
        content: sentinelConf({ sentinels: input.sentinels, ...(input.tls ? { tls: input.tls } : {}) }),
      },
    ],
    secretFiles: [
      { source: 'config/sentinel-users.acl', mountPath: `${SENTINEL_SECRETS}/users.acl` },
      { source: 'config/sentinel-auth.conf', mountPath: `${SENTINEL_SECRETS}/sentinel-auth.conf` },
      { source: 'config/monitor-password', mountPath: `${SENTINEL_SECRETS}/monitor-password` },
    ],
    // Its rewritten configuration: what it learned (the epoch, the other Sentinels, the replicas)
    // survives a reschedule, as Sentinel expects. It holds the two outgoing passwords, on a
    // volume of the stack's (encrypted) storage like Redis's own data.
    volume: { path: SENTINEL_CONFIG_DIR, size: SENTINEL_VOLUME_SIZE },
    scratch: [{ path: '/tmp', memory: true, sizeLimit: '1Mi' }],
    healthCheck: {
      // Ready: it sees a majority of the Sentinels, so it can take part in a failover. Alive: it answers.
      command: ['sh', SENTINEL_SCRIPT, 'ready'],
      liveCommand: ['sh', SENTINEL_SCRIPT, 'live'],
      intervalSeconds: 10,
      timeoutSeconds: 5,
      failureThreshold: 6,
      startupSeconds: 60,
    },
    // Sentinels find each other through the master: all start together, none waits for another's readiness.
    parallel: true,
    terminationGracePeriodSeconds: 10,
    ...(input.tls ? { tls: { directory: input.tls.directory, reload: { command: ['sh', SENTINEL_SCRIPT, 'reload'] } } } : {}),
    clientSettings: { addressesVariable: 'REDIS_SENTINELS', variables: { REDIS_MASTER_NAME: MASTER_NAME } },
  };
  return { highAvailability, companions: [sentinel] };
}
