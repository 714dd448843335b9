/**
 * The target-independent description of a database engine.
 *
 * Each folder under `databases/<engine>/` exports one {@link EngineModule}. The Docker target
 * (`stacks/docker/`) and the Kubernetes target (`stacks/kubernetes/`) render the
 * {@link EngineSpec} it describes; neither target knows anything engine-specific. Adding a sixth
 * engine means one new folder and one entry in `databases/index.ts`.
 */
import type { BackupSettings, BackupSpec, EngineRestore } from './backup.ts';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { z } from 'zod';
import type { AnyBootstrapEngine } from '../bootstrap/contract.ts';
import { toError } from '../bootstrap/errors.ts';

/**
 * An engine's name: its folder under `databases/`, its key under `allixios:engines`, the name of
 * its workload. The engines themselves are the list in `databases/index.ts`.
 */
export type EngineName = string;

/** The deployment profiles a stack can use; each engine has default sizes for every one. */
export const ENVIRONMENTS = ['dev', 'staging', 'prod', 'ephemeral'] as const;
export type Environment = (typeof ENVIRONMENTS)[number];

/** CPU and memory as Kubernetes quantities ("500m", "1Gi"); the Docker target converts them. */
export interface ComputeResources {
  requests: { cpu: string; memory: string };
  limits: { cpu: string; memory: string };
}

/** What an engine gets in one environment when the stack config says nothing. */
export interface EngineSizing {
  /** Size of the data volume, a Kubernetes quantity ("20Gi"). */
  storage: string;
  /** Members, for an engine with an HA manager (default 1; Docker runs one whatever this says). */
  replicas?: number;
  resources: ComputeResources;
}

/**
 * The settings an engine is rendered with: the engine's defaults for the stack's environment,
 * overridden by the stack config and validated (see `stacks/config/`).
 */
export interface EngineSettings<Options = Record<string, unknown>> {
  environment: Environment;
  /** Image tag (the engine's pinned default unless the stack config overrides it). */
  version: string;
  replicas: number;
  storage: string;
  resources: ComputeResources;
  /** Engine-specific options, validated by the engine's own `optionsSchema`. */
  options: Options;
  /**
   * The project's image of the engine as the stack pins it (`allixios:engines.<engine>.image`),
   * for an engine that has one ({@link EngineModule.projectImage}); absent when the stack names none.
   */
  image?: { repository: string; tag: string };
  /**
   * Whether the stack serves this engine over TLS (`allixios:tls`). An engine that supports TLS
   * then returns {@link EngineDescription.tls}; one that does not yet returns none, and the stack
   * config warns that it stays in clear text.
   */
  tls: boolean;
  /**
   * The stack's backups for this engine (`allixios:backups`), absent when they are off: the engine
   * then returns {@link EngineDescription.backup}, how its established tool backs it up there.
   */
  backup?: BackupSettings;
}

/** A generated (or configured) credential of an engine. */
export interface SecretDefinition {
  /** Key in the engine's Secret and in the `allixios:passwords.<engine>` config object, kebab-case. */
  key: string;
  /** What the credential is for, shown in the README and in config errors. */
  description: string;
  /**
   * Why the stack cannot rotate it (`allixios:rotations.<engine>.<key>` is refused) and how it is
   * rotated instead; absent: it rotates like a password.
   */
  notRotatable?: string;
  /**
   * What a configured value (`allixios:passwords.<engine>.<key>`) must look like beyond a password's
   * length, where the engine reads it as more than a password (a key file's alphabet); the
   * generated ones always do.
   */
  format?: { pattern: RegExp; expected: string };
}

/** An environment variable: a literal, or a reference to one of the engine's secrets. */
export type EnvValue = string | { secret: string };

/** A file shipped to the engine as it is on disk (Kubernetes ConfigMap, Docker upload). */
export interface ConfigFile {
  /**
   * Path relative to the engine's folder, e.g. `config/postgresql.conf`; for a generated file (see
   * {@link content}) the name it is known by (its ConfigMap key is derived from it).
   */
  source: string;
  /** The file's content when `describe()` generates it (Patroni's configuration) instead of shipping a file of the folder. */
  content?: string;
  /** Absolute path inside the container. */
  mountPath: string;
  /** The file is a script the image's entrypoint executes. */
  executable?: boolean;
}

/**
 * A file that holds credentials (an ACL file with password hashes, a users file). Its source is
 * a template: `{{ sha256 "<secret-key>" }}`, `{{ bcrypt "<secret-key>" }}` and the other
 * placeholders of `databases/secret-files.ts` are replaced by digests of the secret's value. It
 * reaches the engine only through a Kubernetes Secret or a secret Docker upload, never a ConfigMap.
 *
 * On Kubernetes the files of one directory are mounted together as that directory (not file by
 * file with `subPath`, which never refreshes): a rotated password reaches a running pod within
 * the kubelet's sync period, without a restart. So a directory holding a secret file holds
 * nothing else, and an engine or health check reads such a file when it needs it.
 */
export interface SecretFile {
  /** Path relative to the engine's folder, e.g. `config/users.acl`. */
  source: string;
  /** Absolute path inside the container; absent for a file only the bootstrap reads. */
  mountPath?: string;
  /** The file is a script the image's entrypoint executes. */
  executable?: boolean;
  /**
   * The bootstrap gets the rendered file in this environment variable, to compare the engine's
   * live credentials with it (Redis: `REDIS_USERS_ACL`). Secret on every target.
   */
  bootstrapVariable?: string;
}

/** A container port of the engine. The first one is the port clients connect to. */
export interface PortSpec {
  name: string;
  containerPort: number;
}

/** The engine's own health check, run inside the container. */
export interface HealthCheck {
  /**
   * Ready: serves clients now (Kubernetes readiness, Docker's health check). Exec form; use
   * `['sh', '-c', '...']` where a shell is needed.
   */
  command: string[];
  /**
   * Alive: the process answers, including while it starts, recovers or loads its data and
   * refuses clients meanwhile (Kubernetes startup and liveness probes). A crash recovery longer
   * than the startup budget must not get the engine restarted in a loop. Default: `command`.
   */
  liveCommand?: string[];
  intervalSeconds: number;
  timeoutSeconds: number;
  /** Consecutive failures before the engine counts as unhealthy. */
  failureThreshold: number;
  /** How long a fresh engine may take to start (initdb, first boot) before checks count. */
  startupSeconds: number;
}

/**
 * The TLS form of a connection: what changes in its URL when the engine serves TLS. Every form
 * verifies the server's certificate (chain and host name) against the stack's CA bundle.
 */
export interface ConnectionTls {
  /** The scheme of the TLS form where it differs from the plain one (`rediss`, `https`). */
  scheme?: 'rediss' | 'https';
  /** Query parameters that ask for TLS and full verification, e.g. `sslmode=verify-full`. */
  query?: string;
  /**
   * The query parameter that names the CA bundle file (`sslrootcert`, `tlsCAFile`), for clients
   * that read it from the URL; the file is `CLIENT_CA_PATH` (`databases/connection.ts`).
   */
  caFileParameter?: string;
}

/** How a client authenticates and connects; turned into a URL by `databases/connection.ts`. */
export interface ConnectionSpec {
  scheme: 'postgresql' | 'mongodb' | 'redis' | 'http';
  username: string;
  /** Key of the secret holding the password. */
  passwordSecret: string;
  /** Path after host:port, e.g. `/allixios`. */
  path?: string;
  /** Query string without `?`, e.g. `authSource=admin`. */
  query?: string;
  /** The URL's TLS form, used when the engine serves TLS ({@link EngineSpec.tls}). */
  tls?: ConnectionTls;
}

/**
 * The names of the files in an engine's TLS directory: those of cert-manager's Secrets
 * (`kubernetes.io/tls` plus `ca.crt`, and `tls-combined.pem` for its `CombinedPEM` output
 * format), which the Docker target uses too.
 */
export const TLS_FILES = { certificate: 'tls.crt', key: 'tls.key', ca: 'ca.crt', combinedPem: 'tls-combined.pem' } as const;

/**
 * How an engine serves TLS: where it finds its certificate, and how a renewed one reaches it.
 * Both targets render it (a cert-manager Certificate and its Secret on Kubernetes, generated
 * files on Docker); the engine's own settings (args, config files) point at {@link directory}.
 */
export interface TlsSpec {
  /**
   * Directory holding {@link TLS_FILES}: the server certificate (chain), its private key and the
   * CA. Mounted as a whole directory (not file by file), so a renewal reaches the running pod; it
   * holds nothing else.
   */
  directory: string;
  /**
   * How the engine picks up a renewed certificate without a restart: a command run inside its
   * container (PostgreSQL: reload its configuration). The Kubernetes target runs it from the
   * readiness probe whenever the mounted certificate changed (see `stacks/kubernetes/tls.ts`).
   * Absent for an engine that watches its certificate files and reloads them itself
   * (Elasticsearch): the target then wraps nothing.
   */
  reload?: { command: string[] };
  /**
   * The engine also wants its private key and certificate chain in one PEM file (MongoDB's
   * `certificateKeyFile`), `TLS_FILES.combinedPem` in {@link directory}: the key, then the chain.
   * The Kubernetes target asks cert-manager for its `CombinedPEM` output format, the Docker target
   * uploads the concatenation, a secret like the key. A flag rather than a file name: the name is
   * cert-manager's (the Secret's key), not the engine's to choose.
   */
  combinedPem?: boolean;
}

/**
 * A pod field a variable takes its value from (the Kubernetes downward API). The zone label is the
 * node's `topology.kubernetes.io/zone`, which the API server copies onto the pod when it binds it to
 * the node where the `PodTopologyLabels` admission plugin runs (Kubernetes 1.33 alpha, 1.35 beta:
 * KEP-4742); elsewhere the pod has no such label and the variable is empty.
 */
export type PodField = 'metadata.name' | 'metadata.namespace' | 'status.podIP' | "metadata.labels['topology.kubernetes.io/zone']";

/**
 * What a member's variable holds that only the target knows:
 * - `{ field }`: a field of the member's pod (its name, its namespace, its address);
 * - `{ address: port }`: the member's stable address, `host:port`, where the host is its pod's name
 *   under the governing headless Service with the namespace and the cluster domain
 *   (`postgresql-0.postgresql-headless.allixios-prod.svc.cluster.local`): a name the engine's
 *   certificate carries and the peers can verify, unlike the pod's IP, and one that outlives the pod;
 * - `{ host }`: such a stable host name alone, without a port (see {@link MemberHost}): the member's
 *   own, a peer's by its ordinal, or a member of a companion workload's (ClickHouse Keeper);
 * - `'selectorLabels'`: the labels that select the engine's members, as a JSON object;
 * - `'namespaceDomain'`: the DNS domain of the namespace's Services, `<namespace>.svc.<clusterDomain>`,
 *   from which a member names its peers and its companions' members
 *   (`redis-sentinel-0.redis-sentinel-headless.<namespaceDomain>`). A literal variable of the
 *   engine may refer to it as `$(NAME)`: the target places member variables first, and
 *   Kubernetes expands a reference to an earlier variable.
 */
export type MemberValue = { field: PodField } | { address: number } | { host: MemberHost } | 'selectorLabels' | 'namespaceDomain';

/**
 * Whose stable host name a variable holds: `<pod>.<workload>-headless.<namespace>.svc.<cluster domain>`.
 * - `{}`: the member's own;
 * - `{ ordinal }`: the engine's member of that ordinal (`clickhouse-1`), for a configuration that
 *   lists every member;
 * - `{ workload, ordinal }`: the member of that ordinal of another StatefulSet of the stack, named
 *   `workload` and governed by the headless Service `<workload>-headless` (a companion workload).
 */
export interface MemberHost {
  workload?: string;
  ordinal?: number;
}

/** A rule of the Kubernetes Role an HA manager needs in its namespace. */
export interface KubernetesAccessRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

/**
 * How the engine runs replicated, under an established HA manager (PostgreSQL: Patroni) or its
 * own clustering (a MongoDB replica set, Elasticsearch, ClickHouse replicas, Redis replication):
 * what elects a primary, fails over and rejoins members is never ours. The Kubernetes target runs
 * every member as described (one member too, on a stack of one replica: the same image and
 * procedures everywhere) and gives it what it needs: its identity from its pod
 * ({@link memberEnv}), its peers' access to the cluster ports ({@link ports}: members only),
 * spread members and a disruption budget that keeps a quorum; for a manager that keeps a role
 * label, a primary Service whose endpoints the manager writes and a replicas Service by that
 * label; for one that talks to the Kubernetes API, a Role with its rules. The Docker target runs
 * one plain engine and ignores this.
 */
export interface HighAvailabilitySpec {
  /** The manager's name, or the clustering's (`MongoDB replica set`), for messages and the render. */
  manager: string;
  /** The image that runs the engine under its manager, built by the project (`databases/<engine>/image/`); absent: the engine's. */
  image?: { repository: string; tag: string };
  /** The members' command and arguments; absent: the engine's own (`[]` for none: the image's entrypoint alone). */
  command?: string[];
  args?: string[];
  /** Variables added to the engine's own (literals and secrets). */
  env: Record<string, EnvValue>;
  /** Variables whose values the target fills for each member: see {@link MemberValue}. */
  memberEnv: Record<string, MemberValue>;
  /** Files added to the engine's config files (the manager's configuration). */
  configFiles: ConfigFile[];
  /** The cluster's own ports (a manager's REST API, a transport or interserver port): the members reach them, clients do not. */
  ports: PortSpec[];
  /**
   * The pod label the manager keeps on each member with its role, and the replicas' value: the
   * primary Service is then the manager's (below) and a replicas Service selects by it. Absent:
   * the engine's Service selects every member (the engine routes, or its clients discover the
   * primary themselves).
   */
  roleLabel?: { key: string; replica: string };
  /**
   * Services without selector whose objects the manager keeps (`-config`: Patroni's cluster
   * configuration), by suffix of the engine's name: the Service keeps Kubernetes from deleting its
   * Endpoints. The primary Service (the engine's name) is always one: the manager writes its
   * endpoints together with the leader lock, so it routes to the leader and nothing else.
   */
  managedServices?: string[];
  /** What the manager may do in the namespace: the rules of a Role bound to the engine's ServiceAccount (none: no Kubernetes API access at all). */
  kubernetesAccess?: KubernetesAccessRule[];
  /** The health check of a member under the manager, where it differs from the engine's. */
  healthCheck?: HealthCheck;
  /**
   * Members are created and removed all at once (StatefulSet `podManagementPolicy: Parallel`), not
   * one after the other once the previous one is ready: for a cluster whose members are ready only
   * once a quorum of them runs (an Elasticsearch node is ready once it has joined a cluster with an
   * elected master, which takes a majority of the master-eligible nodes), where the ordered start
   * would wait forever for the first member. Rolling updates stay one member at a time, each
   * waiting for the one before to be ready: the policy changes only how the StatefulSet scales.
   */
  startInParallel?: boolean;
  /**
   * How a member picks up a renewed certificate, where the manager must be told too (Patroni's
   * REST API serves the same certificate as PostgreSQL): replaces {@link TlsSpec.reload}.
   */
  tlsReload?: { command: string[] };
  /**
   * Files with credentials only the members need (a replica set's shared key, Redis's replication
   * password for `masterauth`), rendered like the engine's {@link SecretFile}s into its Secret and
   * mounted by the members (each needs its `mountPath`); a target that runs one plain engine
   * (Docker) neither renders nor mounts them.
   */
  secretFiles?: SecretFile[];
  /**
   * Query parameters every connection to the members adds (`replicaSet=rs0`: the client discovers
   * the members from the one it reaches and follows the primary), on a target that runs them.
   */
  connectionQuery?: string;
  /**
   * For an engine whose membership the bootstrap keeps (a MongoDB replica set: initiated and
   * reconfigured from the stack's members): the variable the bootstrap reads the desired members
   * from, every member's stable address (`<engine>-<i>.<engine>-headless.<ns>.svc.<domain>:<port>`,
   * see {@link MemberValue}) for `i` below the replicas, comma-separated in ordinal order.
   */
  bootstrapMembers?: { variable: string; port: number };
}

/**
 * A connection pooler in front of the engine's primary (PostgreSQL: PgBouncer), run beside it as a
 * workload of its own: the Kubernetes target renders a Deployment, its Service, PodDisruptionBudget
 * and NetworkPolicy, and the connections the pooler carries (the application's) name its Service.
 * Its pods are the engine's clients (the engine's NetworkPolicy admits them) and its own clients are
 * the engine's (the same label). The Docker target runs no pooler: the application connects to
 * the engine directly.
 */
export interface PoolerSpec {
  /** Its name (`pgbouncer`): the Kubernetes objects are `<engine>-<name>`. */
  name: string;
  image: { repository: string; tag: string };
  command?: string[];
  args?: string[];
  /** Replicas for the stack's environment; a rolling update adds one at a time (maxSurge 1). */
  replicas: number;
  /** Its one port: the connections it carries use it. */
  port: PortSpec;
  runAs: { user: number; group: number };
  resources: ComputeResources;
  /** Its configuration (generated: it depends on the stack). */
  configFiles: ConfigFile[];
  /** Files with credentials (templates of the engine's secrets), mounted from the engine's Secret. */
  secretFiles: Array<{ source: string; mountPath: string }>;
  healthCheck: HealthCheck;
  /** The connections that go through it; the others (the bootstrap's, administration) reach the primary. */
  carries: Array<'app'>;
  /** Where it finds a certificate of its own (for its Service's names) when the stack serves TLS. */
  tls?: Pick<TlsSpec, 'directory'>;
  /**
   * How it re-reads its files without a restart (PgBouncer: SIGHUP): the target runs this when its
   * secret files (an auth file after a password rotation) or its certificate (a renewal) changed.
   */
  reload?: { command: string[] };
}

/**
 * Who may connect to a port of a {@link CompanionSpec}: its own members (`peers`), the engine's
 * members (`engine`), the engine's clients and the bootstrap (`clients`).
 */
export type CompanionAudience = 'peers' | 'engine' | 'clients';

/**
 * A workload the engine needs beside its own members, with members of its own (Redis: the
 * Sentinels that elect a master; ClickHouse: its Keeper ensemble). The Kubernetes target renders
 * it as `<engine>-<name>`: a StatefulSet (its members never two on one node in prod, preferably
 * not elsewhere, spread across zones), a headless Service `<engine>-<name>-headless` (per-member
 * DNS names, published before they are ready), a Service `<engine>-<name>` over the ready members,
 * a PodDisruptionBudget that keeps a majority of its members, a NetworkPolicy that admits each
 * port's {@link CompanionSpec.ports audience} and nothing else, and on a TLS stack a certificate
 * for those names. The Docker target runs none: it runs one plain engine.
 *
 * Nothing of it is engine-specific in the target: the description says what to run. Its pods
 * carry `app.kubernetes.io/name: <engine>-<name>`, so the engine's selector never matches them.
 */
export interface CompanionSpec {
  /** Short name (`sentinel`, `keeper`): its objects are `<engine>-<name>`. */
  name: string;
  /** What it does, for the render and the README. */
  description: string;
  /** `app.kubernetes.io/component` of its pods. */
  component: string;
  image: { repository: string; tag: string };
  command?: string[];
  args?: string[];
  /** Members in the stack's environment; an odd number where they vote. */
  replicas: number;
  /**
   * Its ports, the first one its main port; each open to its audience only. A port open to the
   * engine's clients is reachable through its Service, every port through the headless one.
   */
  ports: Array<PortSpec & { from: CompanionAudience[] }>;
  /**
   * Its members connect to the engine's members (Sentinel monitors and reconfigures them): the
   * engine's NetworkPolicy admits them on the engine's client ports.
   */
  connectsToEngine: boolean;
  runAs: { user: number; group: number };
  resources: ComputeResources;
  env: Record<string, EnvValue>;
  /** Values the target fills per member, as {@link HighAvailabilitySpec.memberEnv}, under the companion's headless Service. */
  memberEnv: Record<string, MemberValue>;
  configFiles: ConfigFile[];
  /** Files with credentials (templates of the engine's secrets), mounted from the engine's Secret, a directory of their own. */
  secretFiles: Array<{ source: string; mountPath: string }>;
  /**
   * Writable directories (emptyDir). `memory`: backed by RAM (tmpfs), for what must not reach the
   * node's disk (a configuration the companion rewrites, holding passwords).
   */
  scratch: Array<{ path: string; memory?: boolean; sizeLimit?: string }>;
  /**
   * A persistent volume per member (ClickHouse Keeper's log and snapshots, Sentinel's rewritten
   * configuration), of the engine's StorageClass, protected with the engine's data. Absent: none,
   * but the policy pack holds every StatefulSet of the stack to its data rules (volume claims,
   * protection in prod), so a companion without state is not yet welcome in prod.
   */
  volume?: { path: string; size: string };
  healthCheck: HealthCheck;
  /** Pods start and stop all at once, not one after the other (members that only vote and find each other). */
  parallel?: boolean;
  terminationGracePeriodSeconds: number;
  /** Where it finds a certificate of its own (its Services' names) when the stack serves TLS, and how it takes a renewal. */
  tls?: Pick<TlsSpec, 'directory' | 'reload'>;
  /**
   * Settings the stack exports for the engine's clients (not secret): `addressesVariable` gets the
   * members' addresses on the main port (`host:port,host:port`, the names its certificate
   * carries), `variables` literals (Redis: the master's name under Sentinel).
   */
  clientSettings?: { addressesVariable: string; variables: Record<string, string> };
}

/**
 * A task the engine needs run against itself on a schedule (PostgreSQL's partition maintenance).
 * The Kubernetes target runs it as a CronJob in the engine's own image, as a client of the engine
 * (its NetworkPolicy admits it, on a TLS stack it verifies the server with the CA bundle). The
 * Docker target has no scheduler: an engine that needs the task done at least once per deploy
 * does it from its bootstrap as well.
 */
export interface ScheduledTask {
  /** Short name: the CronJob is `<engine>-<name>`. */
  name: string;
  /** What it does, for the render and the README. */
  description: string;
  /** Cron schedule (`15 3 * * *`), in UTC. */
  schedule: string;
  /** Exec form, run in the engine's image; it reads its connection from the two variables below. */
  command: string[];
  /** Which of the engine's connections it logs in with. */
  connection: 'admin' | 'app';
  /** The variable that gets the connection's URL without its password (TLS form on a TLS stack). */
  urlVariable: string;
  /** The variable that gets the password, from the engine's Secret (the client reads it there: `PGPASSWORD`). */
  passwordVariable: string;
  /** Further variables (literals): the client's settings. */
  env?: Record<string, string>;
  /** Attempts after a failed run (default 2). */
  retries?: number;
  /** A run still going after this long is stopped (default 1800). */
  deadlineSeconds?: number;
}

/**
 * A kernel setting the engine needs on its node, which no unprivileged container can set.
 * The Kubernetes target sets it on every node from a privileged DaemonSet in a namespace of its
 * own (never the engines' namespace, which stays at Pod Security `restricted`).
 */
export interface NodeSysctl {
  name: string;
  value: string;
}

/** The fully resolved description of an engine for one stack: data only, no Pulumi resources. */
export interface EngineSpec extends Pick<EngineModule, 'name' | 'displayName' | 'component' | 'secrets'>, Pick<EngineSettings, 'replicas' | 'storage' | 'resources'> {
  image: { repository: string; tag: string };
  ports: PortSpec[];
  /** Where the engine keeps its data; the data volume is mounted here. */
  dataPath: string;
  /**
   * The non-root user and group the image's engine runs as, and the group that owns mounted
   * volumes (`fsGroup`, defaults to `group`; set it where the image's group is root, gid 0).
   */
  runAs: { user: number; group: number; fsGroup?: number };
  /**
   * Whether the engine runs with a read-only root filesystem. When it does, every path it
   * writes besides `dataPath` must be in `scratchPaths`.
   */
  readOnlyRootFilesystem: boolean;
  /** Writable scratch directories (emptyDir in Kubernetes; the container's own layer in Docker). */
  scratchPaths: string[];
  /**
   * Size of `/dev/shm` where the engine needs more than the runtimes' 64 MB default (PostgreSQL's
   * parallel queries use POSIX shared memory there). Counts against the memory limit when used.
   */
  sharedMemory?: string;
  command?: string[];
  args?: string[];
  env: Record<string, EnvValue>;
  configFiles: ConfigFile[];
  secretFiles: SecretFile[];
  secrets: SecretDefinition[];
  healthCheck: HealthCheck;
  /** Seconds the engine gets to shut down cleanly (flush, checkpoint) before it is killed. */
  terminationGracePeriodSeconds: number;
  /** The platform's own, least-privileged connection. */
  appConnection: ConnectionSpec;
  /** The connection the bootstrap uses to create schemas (owner, admin or superuser). */
  adminConnection: ConnectionSpec;
  /** Kernel settings the stack sets on its nodes (empty: the nodes have them, or none is needed); see {@link NodeSysctl}. */
  nodeSysctls: NodeSysctl[];
  /** Tasks run against the engine on a schedule (Kubernetes CronJobs); none for most engines. */
  scheduledTasks?: ScheduledTask[];
  /** How the engine runs replicated under its HA manager (Kubernetes); absent: one member only. */
  highAvailability?: HighAvailabilitySpec;
  /** A connection pooler in front of the primary (Kubernetes); absent: clients connect directly. */
  pooler?: PoolerSpec;
  /** What the stack config should say in every preview about these settings (accepted, but with a consequence the operator must know). */
  warnings?: string[];
  /** Workloads beside the engine's members (Kubernetes): Redis's Sentinels, ClickHouse Keeper; see {@link CompanionSpec}. */
  companions?: CompanionSpec[];
  /** How the engine is backed up to the stack's object store, when the stack's backups are on; see {@link BackupSpec}. */
  backup?: BackupSpec;
  /**
   * Present when the engine serves TLS (only, no plaintext listener on the network): the stack
   * asked for it ({@link EngineSettings.tls}) and the engine supports it. Its connections then
   * use their {@link ConnectionSpec.tls} form.
   */
  tls?: TlsSpec;
}

/**
 * What an engine's `describe()` returns: only what is particular to the engine. The generic
 * fields (its name, secrets, replicas, storage and resources) come from the module and the
 * stack's settings, filled in once by {@link engineSpec}.
 */
export type EngineDescription = Omit<EngineSpec, keyof Pick<EngineModule, 'name' | 'displayName' | 'component' | 'secrets'> | 'replicas' | 'storage' | 'resources'>;

/** What each `databases/<engine>/index.ts` exports. */
export interface EngineModule<OptionsSchema extends z.ZodType = z.ZodType> {
  name: EngineName;
  /** Used in type tokens (`allixios:kubernetes:PostgreSQL`) and in messages. */
  displayName: string;
  /** `app.kubernetes.io/component` of the engine's workload. */
  component: string;
  /** Absolute path of the engine's folder; config and secret file sources are relative to it. */
  directory: string;
  /** The pinned image tag used unless the stack config sets `version`. */
  defaultVersion: string;
  /**
   * The image the project builds for the engine (`databases/<engine>/image/Dockerfile`), which a
   * Kubernetes stack pins as `allixios:engines.<engine>.image` and the deploy workflow builds and
   * pushes. `requiredIn`: the environments whose Kubernetes stacks must name it.
   */
  projectImage?: { dockerfile: string; purpose: string; requiredIn: readonly Environment[] };
  /**
   * The environment variable the platform (and the bootstrap) reads this engine's URL from:
   * `DATABASE_URL`, `MONGODB_URL`, ... The stack exports the URL under this name.
   */
  urlVariable: string;
  /** Default storage and resources per environment. */
  sizing: Record<Environment, EngineSizing>;
  /**
   * The engine's backup jobs and their default cron schedules (UTC) by job name (absent: the
   * engine has no backup of its own, and `allixios:backups` leaves it out), which
   * `allixios:backups.schedules.<engine>.<job>` may override; the engine's `describe()` reads the
   * resolved ones from {@link EngineSettings.backup}.
   */
  backupSchedules?: Record<string, string>;
  /** The engine's restore (`npm run restore`), loaded when asked for; absent: it has none. */
  restore?: () => Promise<EngineRestore>;
  /**
   * The variable of the read-only URL (`DATABASE_READ_URL`), for an engine with read replicas
   * ({@link EngineDescription.highAvailability}): the replicas' Service, or the primary's on a
   * stack of one member.
   */
  readUrlVariable?: string;
  /** Schema of `allixios:engines.<engine>.options`, with defaults per environment applied by `describe`. */
  optionsSchema: OptionsSchema;
  /** The credentials this engine needs (`EngineSpec.secrets`). */
  secrets: SecretDefinition[];
  /** What is particular to the engine in one stack; {@link engineSpec} adds the generic fields. */
  describe(settings: EngineSettings<z.output<OptionsSchema>>): EngineDescription;
  /**
   * How the bootstrap brings the engine to the platform's schema (`bootstrap/contract.ts`).
   * Loaded when the bootstrap runs: the Pulumi program describes engines without loading their
   * drivers.
   */
  bootstrap(): Promise<AnyBootstrapEngine>;
}

/** The engine as a stack renders it: its description with the module's and the settings' generic fields. */
export function engineSpec<OptionsSchema extends z.ZodType>(module: EngineModule<OptionsSchema>, settings: EngineSettings<z.output<OptionsSchema>>): EngineSpec {
  const description = module.describe(settings);
  if (description.tls && !settings.tls) throw new Error(`${module.name}: describe() returned TLS settings for a stack without TLS`);
  if (description.tls && !(description.appConnection.tls && description.adminConnection.tls)) {
    throw new Error(`${module.name}: describe() serves TLS but its connections have no TLS form (ConnectionSpec.tls)`);
  }
  return {
    name: module.name,
    displayName: module.displayName,
    component: module.component,
    ...description,
    secrets: module.secrets,
    replicas: settings.replicas,
    storage: settings.storage,
    resources: settings.resources,
  };
}

/**
 * Thrown by `describe` for settings that pass the generic schema but not the engine (a memory
 * limit too small for it, say). The stack config reports it like any other invalid key.
 */
export class EngineSettingError extends Error {
  constructor(
    /** Path below `allixios:engines.<engine>`, e.g. `['resources', 'limits', 'memory']`. */
    readonly path: string[],
    readonly expected: string,
    readonly received: unknown,
  ) {
    super(`${path.join('.')}: expected ${expected}, got ${JSON.stringify(received)}`);
    this.name = 'EngineSettingError';
  }
}

/** The folder of a module given its `import.meta.url`. */
export function moduleDirectory(importMetaUrl: string): string {
  return dirname(fileURLToPath(importMetaUrl));
}

/** Reads a config or secret file source of an engine. */
export function readEngineFile(engine: Pick<EngineModule, 'name' | 'directory'>, source: string): string {
  const path = join(engine.directory, source);
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`${engine.name}: cannot read config file ${path}: ${toError(error).message}`, { cause: error });
  }
}

/**
 * Converts a Kubernetes memory quantity to bytes ("512Mi" -> 536870912). Used where an engine
 * sizes a cache from its memory limit, and by the Docker target.
 */
export function memoryBytes(quantity: string): number {
  const match = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(quantity);
  if (!match) throw new Error(`expected a memory quantity such as 512Mi or 2Gi, got "${quantity}"`);
  const units: Record<string, number> = {
    '': 1,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
  };
  return Math.floor(Number(match[1]) * units[match[2] ?? '']!);
}
