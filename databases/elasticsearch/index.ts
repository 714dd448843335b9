/**
 * Elasticsearch, the platform's search engine: full-text article search, facets, suggestions and
 * search analytics.
 *
 * Official image `docker.elastic.co/elasticsearch/elasticsearch` (UBI 9 minimal, with curl). It
 * runs as uid 1000 with gid 0: the image's files are group 0 and group-writable, which is how any
 * uid in group 0 (OpenShift) can run it. Security is on; the platform's users are in the file
 * realm (config/users is a secret-file template of bcrypt hashes), `elastic` in the native realm
 * with its bootstrap password from ELASTIC_PASSWORD. See README.md for vm.max_map_count.
 */
import { z } from 'zod';
import {
  EngineSettingError,
  moduleDirectory,
  TLS_FILES,
  type ConnectionTls,
  type EngineModule,
  type EngineDescription,
  type Environment,
  type EnvValue,
  type HealthCheck,
  type NodeSysctl,
  type TlsSpec,
} from '../engine.ts';
import { backupStartLines, elasticsearchBackup } from './backup.ts';
import { clusterHighAvailability, SINGLE_NODE_SETTINGS, type HealthRequest } from './cluster.ts';

const secrets = [
  { key: 'elastic-password', description: 'elastic, the built-in superuser (native realm), used by the bootstrap' },
  { key: 'app-password', description: 'allixios_app (file realm): documents of articles* and search-analytics*' },
  { key: 'monitor-password', description: 'allixios_monitor (file realm): cluster monitoring, used by the health check' },
];

/**
 * How the node gets the `vm.max_map_count` Elasticsearch needs for memory-mapped index files
 * (README.md): the node already has it (Elastic's documented way), a privileged DaemonSet in a
 * namespace of its own sets it on every node, or Elasticsearch does not memory-map and needs none.
 */
export const MAX_MAP_COUNT_MODES = ['nodePrerequisite', 'daemonSet', 'disableMmap'] as const;
export type MaxMapCountMode = (typeof MAX_MAP_COUNT_MODES)[number];

const optionsSchema = z.strictObject({
  /** Unset: `nodePrerequisite` in staging and prod, `disableMmap` in dev (Docker) and ephemeral stacks. */
  maxMapCount: z.enum(MAX_MAP_COUNT_MODES).optional(),
  /**
   * The stack forms a new cluster of several nodes: its members get `cluster.initial_master_nodes`.
   * For the first deploy of a new multi-node stack only, then removed (README.md, "The first
   * formation"); a stack that grows from one node needs none.
   */
  formCluster: z.boolean().optional(),
});

/** The engine's secret files: a directory of their own, which Kubernetes refreshes when a password rotates. */
const CONFIG_PATH = '/usr/share/elasticsearch/config';
const SECRETS_PATH = `${CONFIG_PATH}/secrets`;

/**
 * The file realm reads `config/users` and nothing else, and reloads it when it changes
 * (`resource.reload.interval.high`, 5 s). The users file lives in the secrets directory, so a
 * rotated password reaches it; the link makes the realm read it there. Then the image's own
 * entrypoint starts Elasticsearch as it would have (a command other than `eswrapper` is run as
 * it is, so the entrypoint is asked for `eswrapper` again).
 */
const ENTRYPOINT = '/usr/local/bin/docker-entrypoint.sh';
const START_WITH_USERS_LINK = ['sh', '-c', `ln -sfn secrets/users ${CONFIG_PATH}/users && exec ${ENTRYPOINT} eswrapper`];

/** The single node's start when the stack backs up: the backups' links first (backup.ts), then as above. */
function startWithBackupLinks(before: readonly string[]): string[] {
  return ['sh', '-c', ['set -e', ...before, `ln -sfn secrets/users ${CONFIG_PATH}/users`, `exec ${ENTRYPOINT} eswrapper`].join('\n')];
}

/**
 * Where the certificate's Secret is mounted when the stack serves TLS: under the config directory,
 * the only place Elasticsearch may read SSL files from.
 */
export const TLS_DIRECTORY = `${CONFIG_PATH}/tls`;

/**
 * Elasticsearch watches its SSL files (every 5 s, `resource.reload.interval.high`) and reloads a
 * certificate and key replaced under the same names, which is what a refreshed Secret volume
 * and a new Docker upload are: no reload command (`TlsSpec.reload` absent).
 */
const TLS: TlsSpec = { directory: TLS_DIRECTORY };

/**
 * HTTP and transport TLS, as settings variables (lower-case dotted names, read by the Docker
 * distribution as settings). With TLS, both layers serve the certificate of `TLS_DIRECTORY`, PEM
 * files; HTTP asks no client certificate (users authenticate with passwords); transport requires
 * one from every peer and verifies the peer's chain and host name (`full`) against `ca.crt`: a node
 * dials its peers by names the certificate carries (the headless Service's, and each member's
 * published DNS name, see cluster.ts), never by a bare IP. TLS 1.2 and 1.3 only. Without TLS both
 * are off, which Elasticsearch allows only for a single node, whose transport layer listens on
 * loopback (`SINGLE_NODE_SETTINGS`).
 */
export function tlsSettings(tls: boolean, directory = TLS_DIRECTORY): Record<string, string> {
  if (!tls) return { 'xpack.security.http.ssl.enabled': 'false', 'xpack.security.transport.ssl.enabled': 'false' };
  const files = {
    certificate: `${directory}/${TLS_FILES.certificate}`,
    key: `${directory}/${TLS_FILES.key}`,
    certificate_authorities: `${directory}/${TLS_FILES.ca}`,
  };
  const layer = (name: 'http' | 'transport', extra: Record<string, string>) =>
    Object.fromEntries(
      Object.entries({ enabled: 'true', ...files, supported_protocols: 'TLSv1.3,TLSv1.2', ...extra }).map(([setting, value]) => [`xpack.security.${name}.ssl.${setting}`, value]),
    );
  return { ...layer('http', { client_authentication: 'none' }), ...layer('transport', { verification_mode: 'full', client_authentication: 'required' }) };
}

/**
 * The health checks: over HTTPS with TLS, verifying the node's certificate with `ca.crt` for the
 * name `localhost` (which every certificate covers), resolved to the IPv4 loopback the node listens on.
 */
function healthRequest(tls: boolean): HealthRequest {
  return {
    curl: tls ? `curl --cacert ${TLS_DIRECTORY}/${TLS_FILES.ca} --resolve localhost:9200:127.0.0.1` : 'curl',
    node: tls ? 'https://localhost:9200' : 'http://127.0.0.1:9200',
  };
}

function healthChecks(tls: boolean): Pick<HealthCheck, 'command' | 'liveCommand'> {
  const { curl, node } = healthRequest(tls);
  return {
    command: ['sh', '-c', `${curl} -fsS --max-time 8 -H @"$ES_MONITOR_AUTH_FILE" "${node}/_cluster/health?local=true&timeout=5s" >/dev/null`],
    liveCommand: ['sh', '-c', `${curl} -sS --max-time 8 -o /dev/null ${node}/`],
  };
}

/** The TLS form of the URLs: https, verified by the client against the CA bundle it is given (the URL names none). */
const CONNECTION_TLS: ConnectionTls = { scheme: 'https' };

/** Elastic's value for Elasticsearch 8.16 and later (262144 before). */
export const MAX_MAP_COUNT = '1048576';

/**
 * staging and prod run on node pools the platform team prepares: vm.max_map_count is a node
 * prerequisite there, as Elastic documents it, and nothing privileged runs. dev runs on Docker,
 * which cannot set it for one container (it is not a namespaced sysctl), and an ephemeral stack
 * lands on whatever cluster a pull request uses: both run without memory mapping.
 */
function defaultMaxMapCountMode(environment: Environment): MaxMapCountMode {
  return environment === 'staging' || environment === 'prod' ? 'nodePrerequisite' : 'disableMmap';
}

export const elasticsearch: EngineModule<typeof optionsSchema> = {
  name: 'elasticsearch',
  displayName: 'Elasticsearch',
  component: 'search',
  directory: moduleDirectory(import.meta.url),
  defaultVersion: '9.5.3',
  urlVariable: 'ELASTICSEARCH_URL',
  // A snapshot by the engine's own lifecycle policy (SLM), nightly (backup.ts).
  backupSchedules: { snapshot: '0 2 * * *' },
  secrets,
  optionsSchema,
  bootstrap: async () => (await import('../../bootstrap/adapters/elasticsearch.ts')).elasticsearchEngine,
  // One SLM snapshot restored beside the live data under a prefix (restore.ts), for `npm run restore`.
  restore: async () => (await import('./restore.ts')).elasticsearchEngineRestore(),
  // Memory requests equal limits: the heap is sized from the limit, and a node that cannot give
  // the container its limit would have it OOM-killed at full heap. Three nodes in staging and prod
  // (README.md, "A cluster of nodes"): a master quorum that survives one node's loss, and each
  // shard's replica (auto-expanded, mappings/) on another node. Staging rehearses prod's topology
  // (formation, rolling restarts, a node drained) at staging's sizes; two nodes would be the worst
  // choice: the voting configuration keeps one of them, whose loss stops the cluster. One node
  // where nothing is at stake (ephemeral stacks, Docker).
  sizing: {
    dev: { storage: '5Gi', resources: { requests: { cpu: '250m', memory: '1Gi' }, limits: { cpu: '1', memory: '1Gi' } } },
    ephemeral: { storage: '2Gi', replicas: 1, resources: { requests: { cpu: '100m', memory: '1Gi' }, limits: { cpu: '1', memory: '1Gi' } } },
    staging: { storage: '20Gi', replicas: 3, resources: { requests: { cpu: '500m', memory: '2Gi' }, limits: { cpu: '2', memory: '2Gi' } } },
    prod: { storage: '100Gi', replicas: 3, resources: { requests: { cpu: '2', memory: '8Gi' }, limits: { cpu: '4', memory: '8Gi' } } },
  },
  describe(settings): EngineDescription {
    const clustered = settings.replicas > 1;
    if (settings.replicas === 2) {
      throw new EngineSettingError(
        ['replicas'],
        '1 (a single node) or at least 3: of two master-eligible nodes only one votes, and losing it stops the cluster (README.md, "A cluster of nodes")',
        settings.replicas,
      );
    }
    if (clustered && !settings.tls) {
      throw new EngineSettingError(
        ['replicas'],
        '1 on a stack without TLS (allixios:tls false): with security on, Elasticsearch nodes talk to each other only over transport TLS, whose certificate the stack gives only with TLS',
        settings.replicas,
      );
    }
    if (settings.options.formCluster === true && !clustered) {
      throw new EngineSettingError(
        ['options', 'formCluster'],
        'false or unset on a stack of one node, which forms its cluster by itself (discovery.type: single-node)',
        settings.options.formCluster,
      );
    }
    const maxMapCount = settings.options.maxMapCount ?? defaultMaxMapCountMode(settings.environment);
    const nodeSysctls: NodeSysctl[] = maxMapCount === 'daemonSet' ? [{ name: 'vm.max_map_count', value: MAX_MAP_COUNT }] : [];
    const mmapEnv: Record<string, EnvValue> =
      // Lower-case dotted variables are settings in the Docker distribution; without mmap the
      // node uses niofs and the max_map_count bootstrap check does not apply.
      maxMapCount === 'disableMmap' ? { 'node.store.allow_mmap': 'false' } : {};
    const backupStart = settings.backup ? backupStartLines(settings.backup) : [];
    const healthCheck: HealthCheck = {
      // The node, not the cluster: it answers an authenticated request from its own state
      // (local=true, no wait_for_status). A red index is an alert, not a reason to take the
      // node out of its Service or to restart it every few minutes, which only makes it worse.
      // Alive (liveCommand): the HTTP layer answers at all (a 401 or 503 while the security
      // index recovers counts: curl without -f exits 0 on any HTTP reply). A cluster's member is
      // ready once it has joined the cluster (cluster.ts, joinedClusterCheck).
      ...healthChecks(settings.tls),
      intervalSeconds: 15,
      timeoutSeconds: 10,
      failureThreshold: 5,
      // A JVM with a small CPU limit; the first start also creates the security index.
      startupSeconds: 300,
    };
    return {
      image: { repository: 'docker.elastic.co/elasticsearch/elasticsearch', tag: settings.version },
      // HTTP, the clients' port. A cluster's transport port (9300) is its members' alone
      // (highAvailability.ports); a single node keeps its transport layer on loopback.
      ports: [{ name: 'http', containerPort: 9200 }],
      dataPath: '/usr/share/elasticsearch/data',
      runAs: { user: 1000, group: 0 },
      // The root filesystem must stay writable: at every start the entrypoint creates
      // config/elasticsearch.keystore and adds bootstrap.password to it from ELASTIC_PASSWORD, and
      // Elasticsearch adds keystore.seed to it, in the image's config directory next to the files
      // mounted there. An emptyDir over config/ would hide jvm.options and log4j2.properties.
      readOnlyRootFilesystem: false,
      scratchPaths: [],
      args: backupStart.length > 0 ? startWithBackupLinks(backupStart) : START_WITH_USERS_LINK,
      env: {
        // The entrypoint writes it to the keystore as bootstrap.password: the password of `elastic`
        // until the bootstrap changes it in the native realm (a rotation, README "Rotating a password").
        ELASTIC_PASSWORD: { secret: 'elastic-password' },
        // For the health check only, which reads the file at every check (see healthCheck).
        ES_MONITOR_AUTH_FILE: `${SECRETS_PATH}/monitor-auth`,
        ...mmapEnv,
        // One node; a cluster's members replace these with the cluster's (highAvailability.env).
        ...SINGLE_NODE_SETTINGS,
        ...tlsSettings(settings.tls),
        // No ES_JAVA_OPTS: Elasticsearch sizes its heap from the container's memory limit (about
        // half of it for a node with the data role) and resizes with the limit; Elastic recommends
        // this automatic sizing over a fixed -Xms/-Xmx.
      },
      configFiles: [
        { source: 'config/elasticsearch.yml', mountPath: '/usr/share/elasticsearch/config/elasticsearch.yml' },
        { source: 'config/roles.yml', mountPath: '/usr/share/elasticsearch/config/roles.yml' },
        // Role to user names only, no credential: a plain config file next to the secret users file.
        { source: 'config/users_roles', mountPath: '/usr/share/elasticsearch/config/users_roles' },
      ],
      secretFiles: [
        // username:bcrypt-hash lines rendered from the secrets (databases/secret-files.ts), read
        // by the file realm through the config/users link (START_WITH_USERS_LINK).
        { source: 'config/users', mountPath: `${SECRETS_PATH}/users` },
        // The monitor user's Authorization header: the health check sends it with `curl -H @file`,
        // so the password is on no command line and a rotated one is used without a restart.
        { source: 'config/monitor-auth', mountPath: `${SECRETS_PATH}/monitor-auth` },
      ],
      healthCheck,
      // Time to flush and close shards cleanly.
      terminationGracePeriodSeconds: 120,
      appConnection: { scheme: 'http', username: 'allixios_app', passwordSecret: 'app-password', tls: CONNECTION_TLS },
      adminConnection: { scheme: 'http', username: 'elastic', passwordSecret: 'elastic-password', tls: CONNECTION_TLS },
      nodeSysctls,
      ...(settings.tls ? { tls: TLS } : {}),
      // Snapshots into the stack's object store on SLM's schedule, when the stack backs up (backup.ts).
      ...(settings.backup ? { backup: elasticsearchBackup(settings.backup) } : {}),
      ...(clustered
        ? {
            highAvailability: clusterHighAvailability({
              engine: elasticsearch.name,
              replicas: settings.replicas,
              formCluster: settings.options.formCluster === true,
              paths: { configPath: CONFIG_PATH, entrypoint: ENTRYPOINT },
              healthCheck,
              request: healthRequest(settings.tls),
              ...(backupStart.length > 0 ? { startBefore: backupStart } : {}),
            }),
          }
        : {}),
    };
  },
};
