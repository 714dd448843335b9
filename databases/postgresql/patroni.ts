/**
 * PostgreSQL's high availability with Patroni: the configuration one member's Patroni reads
 * (`/etc/patroni/patroni.yml` in the image of `image/Dockerfile`), rendered by a pure function.
 *
 * One source of server settings: the server keeps reading the project's own `config/postgresql.conf`
 * (Patroni's `custom_conf`, which the postgresql.conf Patroni writes into the data directory
 * includes first), and its client authentication is the project's `config/pg_hba*.conf` (Patroni
 * writes `pg_hba.conf` from `postgresql.pg_hba`, and these are that file's lines). What this
 * module adds is only what Patroni needs besides: the parameters Patroni passes to the server on
 * its command line (which would override the file, so they are carried here from the file's
 * values), the memory and TLS arguments `index.ts` gives the single server, and the replication
 * settings. Why each setting has its value: databases/postgresql/README.md, "High availability
 * (Patroni)".
 *
 * No password is ever rendered: Patroni reads them from its environment
 * ({@link PATRONI_CREDENTIALS}) and removes them from it before it starts anything.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import {
  memoryBytes,
  moduleDirectory,
  TLS_FILES,
  type ConfigFile,
  type EnvValue,
  type Environment,
  type HealthCheck,
  type HighAvailabilitySpec,
  type MemberValue,
} from '../engine.ts';
import { archiveParameters, PGBACKREST_REPLICA_METHOD, RESTORE_COMMAND } from './backup.ts';
import { memoryArgs, startupSeconds, TLS_DIRECTORY, tlsArgs } from './server.ts';

const DIRECTORY = moduleDirectory(import.meta.url);

/** The DCS holding the leader lock and the cluster's dynamic configuration. */
export type PatroniDcs =
  | {
      /** Kubernetes itself (no etcd to run): Patroni's `kubernetes` section. */
      kubernetes: {
        /** The namespace of the pods and of the Endpoints/ConfigMaps Patroni keeps its state in (else `PATRONI_KUBERNETES_NAMESPACE`). */
        namespace?: string;
        /** Labels of every pod of the cluster and of the objects Patroni creates (else `PATRONI_KUBERNETES_LABELS`, JSON). */
        labels?: Record<string, string>;
        /** The label carrying the cluster's name (`scope`); Patroni's default is `cluster-name`. */
        scopeLabel?: string;
        /**
         * The label Patroni sets to the member's role, for the role Services' selectors; Patroni's
         * default is `role`. Its values depend on Patroni's version: `master`/`replica` up to 3.x,
         * `primary`/`replica` from 4.0 on.
         */
        roleLabel?: string;
        /**
         * Leader lock and configuration in Endpoints (true: the leader's address and its lock change
         * in one write, the mode Patroni's documentation recommends) or ConfigMaps. Default true.
         */
        useEndpoints?: boolean;
        /** The pod's IP (from the downward API through `PATRONI_KUBERNETES_POD_IP` is the usual way). */
        podIp?: string;
        /** The ports of the leader Endpoints, named as the primary Service's ports (with useEndpoints). */
        ports?: Array<{ name: string; port: number }>;
        /** Talk to the API server's endpoints directly rather than through its Service. */
        bypassApiService?: boolean;
      };
    }
  | {
      /** etcd's v3 API: the drill's DCS (and any other place without Kubernetes). */
      etcd3: { hosts: string[] };
    };

/**
 * Where one member listens and how the others reach it (`host:port`). What is left out comes from
 * the member's environment (`PATRONI_NAME`, `PATRONI_POSTGRESQL_CONNECT_ADDRESS`,
 * `PATRONI_RESTAPI_CONNECT_ADDRESS`), which Patroni lays over the file: on Kubernetes one file
 * serves every member, and each pod's variables say who it is.
 */
export interface PatroniMemberAddresses {
  /** The member's name, unique in the cluster (the pod's name on Kubernetes). */
  name?: string;
  postgresql: { listen: string; connectAddress?: string };
  restApi: { listen: string; connectAddress?: string };
}

/** Where the member finds its data and its programs. */
export interface PatroniDirectories {
  /** PGDATA. Patroni runs initdb or pg_basebackup into it; it must be empty or a cluster's. */
  data: string;
  /** Where `postgres`, `pg_ctl`, `pg_basebackup`, `pg_rewind` are (`/usr/lib/postgresql/18/bin`). */
  bin: string;
  /** The server's Unix socket directory, which Patroni connects through. */
  socket: string;
  /** The `.pgpass` Patroni writes for pg_basebackup and pg_rewind (a writable path). */
  pgpass: string;
  /** The project's postgresql.conf as mounted in the container (the `custom_conf`). */
  customConf: string;
}

export interface PatroniInput {
  environment: Environment;
  /** The cluster's name (`scope`): the DCS key prefix, the pods' scope label, `cluster_name`. */
  scope: string;
  /** How many members the cluster has (the StatefulSet's replicas). */
  members: number;
  dcs: PatroniDcs;
  member: PatroniMemberAddresses;
  directories: PatroniDirectories;
  /**
   * Present when the stack serves TLS: the directory holding `TLS_FILES` (default
   * `index.ts`'s TLS_DIRECTORY). The server, replication, pg_rewind and the REST API then all use
   * TLS with full verification, so every `connectAddress` must be a name the certificate carries
   * (on Kubernetes the headless Service's per-pod names, not pod IPs).
   */
  tls?: { directory?: string };
  /** The container's memory limit: shared_buffers and effective_cache_size follow it as in index.ts. */
  memory?: { limit: string; sharedBuffersRatio?: number };
  /** The data volume's size, which bounds the WAL replication slots may hold back. Default: the size of prod's volume. */
  storage?: string;
  /** The text of postgresql.conf (default: `config/postgresql.conf`). */
  postgresqlConf?: string;
  /** The text of the pg_hba file (default: `config/pg_hba-tls.conf` with TLS, else `config/pg_hba.conf`). */
  pgHba?: string;
  /**
   * The script Patroni runs once, on the member that initialises the cluster, after initdb
   * (`bootstrap.post_bootstrap`): `patroni/post-bootstrap.sh` as mounted, which creates the
   * platform's database and roles. Patroni passes it a connection string to the new server.
   */
  postBootstrap?: string;
  /**
   * Present when the stack backs PostgreSQL up (backup.ts): the server archives its WAL with
   * pgBackRest (only the primary does, `archive_mode = on`), fetches what streaming cannot give it
   * from the repository, and a new member is restored from the repository before Patroni falls back
   * to pg_basebackup from the leader. pgBackRest finds its configuration at its default path.
   */
  backup?: boolean;
}

/** A Patroni connection's credentials as rendered: a user name and TLS settings, never a password. */
export interface PatroniUser {
  username: string;
  sslmode?: 'verify-full';
  sslrootcert?: string;
}

/** Patroni's settings in the DCS (`bootstrap.dcs`): written once, when the cluster is initialised. */
export interface PatroniDynamicConfig {
  ttl: number;
  loop_wait: number;
  retry_timeout: number;
  maximum_lag_on_failover: number;
  primary_start_timeout: number;
  check_timeline: boolean;
  synchronous_mode: boolean;
  synchronous_mode_strict: boolean;
  synchronous_node_count: number;
  failsafe_mode: boolean;
  postgresql: {
    use_pg_rewind: boolean;
    use_slots: boolean;
    parameters: Record<string, string | number>;
  };
}

/** One member's Patroni configuration, as serialised to patroni.yml. */
export interface PatroniConfig {
  scope: string;
  name?: string;
  log: { level: 'INFO' };
  restapi: { listen: string; connect_address?: string; certfile?: string; keyfile?: string; cafile?: string };
  kubernetes?: {
    namespace?: string;
    labels?: Record<string, string>;
    scope_label?: string;
    role_label?: string;
    use_endpoints: boolean;
    pod_ip?: string;
    ports?: Array<{ name: string; port: number }>;
    bypass_api_service?: boolean;
  };
  etcd3?: { hosts: string[] };
  bootstrap: {
    dcs: PatroniDynamicConfig;
    initdb: Array<string | Record<string, string>>;
    post_bootstrap?: string;
  };
  postgresql: {
    listen: string;
    connect_address?: string;
    data_dir: string;
    bin_dir: string;
    pgpass: string;
    custom_conf: string;
    use_unix_socket: boolean;
    remove_data_directory_on_rewind_failure: boolean;
    basebackup: Array<string | Record<string, string>>;
    /** With backups: restore a new member from the repository first, then pg_basebackup (Patroni's replica methods, in order). */
    create_replica_methods?: Array<'pgbackrest' | 'basebackup'>;
    /** With backups: the `pgbackrest` replica method (Patroni's `postgresql.<method>` section). */
    pgbackrest?: { command: string; keep_data: boolean; no_params: boolean };
    /** With backups: what a replica's recovery settings add (Patroni writes them when it configures a follower). */
    recovery_conf?: { restore_command: string };
    authentication: { superuser: PatroniUser; replication: PatroniUser; rewind: PatroniUser };
    parameters: Record<string, string | number>;
    pg_hba: string[];
  };
  tags: { nofailover: boolean; noloadbalance: boolean; clonefrom: boolean; nosync: boolean };
}

/** The roles Patroni creates and uses (their passwords: {@link PATRONI_CREDENTIALS}). */
export const PATRONI_USERS = { superuser: 'postgres', replication: 'allixios_replicator', rewind: 'allixios_rewind' } as const;

/**
 * The credentials Patroni reads from its environment, each from a secret of the engine: the
 * superuser's (the engine's existing `superuser-password`), the streaming replication role's,
 * pg_rewind's role's, and the REST API's basic authentication (its unsafe endpoints: switchover,
 * restart, reinitialise, PATCH /config). Patroni takes them out of its environment at start, so
 * PostgreSQL and the commands Patroni runs do not inherit them.
 */
export const PATRONI_CREDENTIALS = [
  { variable: 'PATRONI_SUPERUSER_PASSWORD', secret: 'superuser-password', description: 'the postgres superuser (initdb, and Patroni over the socket)' },
  { variable: 'PATRONI_REPLICATION_PASSWORD', secret: 'replication-password', description: `${PATRONI_USERS.replication}, streaming replication and pg_basebackup` },
  { variable: 'PATRONI_REWIND_PASSWORD', secret: 'rewind-password', description: `${PATRONI_USERS.rewind}, pg_rewind of a former primary against the new one` },
  { variable: 'PATRONI_RESTAPI_PASSWORD', secret: 'patroni-api-password', description: "Patroni's REST API: switchover, restart, configuration changes (user patroni)" },
] as const;

/** The user name of the REST API's basic authentication (its password: PATRONI_RESTAPI_PASSWORD). */
export const PATRONI_API_USER = 'patroni';

/** The environment a Patroni container needs for its credentials: every password from a secret. */
export function patroniEnvironment(): Record<string, EnvValue> {
  return {
    PATRONI_RESTAPI_USERNAME: PATRONI_API_USER,
    ...Object.fromEntries(PATRONI_CREDENTIALS.map(({ variable, secret }) => [variable, { secret }])),
  };
}

/**
 * Timing of the HA loop, the same everywhere (Patroni's defaults, which keep its documented rule
 * loop_wait + 2 × retry_timeout <= ttl): an API server or etcd that stalls for up to
 * retry_timeout demotes nobody, and a lost primary's lock expires after ttl.
 */
export const PATRONI_TIMING = { ttl: 30, loop_wait: 10, retry_timeout: 10 } as const;

/** One MiB of WAL: the most a replica may lag to be promoted (Patroni's default, stated). */
export const MAXIMUM_LAG_ON_FAILOVER = 1024 * 1024;

/**
 * The parameters Patroni passes to postgres on its command line (Patroni 3.0's
 * `ConfigHandler.CMDLINE_OPTIONS`), which therefore outrank postgresql.conf: their values must
 * come from the DCS, or Patroni's own defaults (max_connections 100, ...) would silently replace
 * the file's. `listen_addresses` and `port` come from the member's `listen`, `cluster_name` from
 * the scope.
 */
export const PATRONI_COMMAND_LINE_PARAMETERS = [
  'wal_level',
  'hot_standby',
  'max_connections',
  'max_wal_senders',
  'wal_keep_size',
  'max_prepared_transactions',
  'max_locks_per_transaction',
  'track_commit_timestamp',
  'max_replication_slots',
  'max_worker_processes',
  'wal_log_hints',
] as const;

/**
 * What replication under Patroni needs beyond postgresql.conf, for the command-line parameters
 * the file does not set. Each is Patroni's default, written out so the DCS states them:
 * 10 WAL senders and slots are enough for 3 members plus a backup; pg_rewind needs
 * wal_log_hints (or checksums, which initdb turns on too).
 */
const REPLICATION_DEFAULTS: Record<string, string | number> = {
  hot_standby: 'on',
  max_wal_senders: 10,
  max_replication_slots: 10,
  wal_log_hints: 'on',
};

/** postgresql.conf's settings: `name = value`, comments and quotes removed. */
export function readServerSettings(text: string): Map<string, string> {
  const settings = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const match = /^\s*([A-Za-z_][\w.]*)\s*=?\s*('(?:[^']|'')*'|[^#\s]+)/.exec(raw);
    if (!match) continue;
    const value = match[2]!.startsWith("'") ? match[2]!.slice(1, -1).replaceAll("''", "'") : match[2]!;
    settings.set(match[1]!.toLowerCase(), value);
  }
  return settings;
}

/** A pg_hba file's rules: one line each, comments and blank lines dropped, spacing collapsed. */
export function readHbaRules(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim().replace(/\s+/g, ' '))
    .filter((line) => line !== '');
}

/** `-c name=value` arguments (as index.ts gives the single server) as parameters. */
function parametersOf(args: readonly string[]): Record<string, string> {
  const parameters: Record<string, string> = {};
  for (let i = 0; i < args.length; i += 2) {
    if (args[i] !== '-c') throw new Error(`expected "-c name=value" arguments, got ${JSON.stringify(args)}`);
    const [name, ...value] = args[i + 1]!.split('=');
    parameters[name!] = value.join('=');
  }
  return parameters;
}

const isHostPort = (value: string) => /^(\[[0-9a-fA-F:]+\]|[^\s:[\]]+):\d{1,5}$/.test(value);

function checkInput(input: PatroniInput): void {
  if (!Number.isInteger(input.members) || input.members < 1) throw new Error(`Patroni: members must be a whole number of at least 1, got ${input.members}`);
  if (input.environment === 'prod' && input.members < 2) {
    throw new Error(`Patroni: prod replicates synchronously and needs at least 2 members (3 recommended), got ${input.members}`);
  }
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(input.scope)) throw new Error(`Patroni: scope must be a DNS label (it names Kubernetes objects), got "${input.scope}"`);
  for (const [key, value] of Object.entries({
    'member.postgresql.listen': input.member.postgresql.listen,
    'member.postgresql.connectAddress': input.member.postgresql.connectAddress,
    'member.restApi.listen': input.member.restApi.listen,
    'member.restApi.connectAddress': input.member.restApi.connectAddress,
  })) {
    if (value !== undefined && !isHostPort(value)) throw new Error(`Patroni: ${key} must be host:port, got "${value}"`);
  }
  if (input.postBootstrap !== undefined && !input.postBootstrap.startsWith('/')) {
    throw new Error(`Patroni: postBootstrap must be an absolute path, got "${input.postBootstrap}"`);
  }
  for (const [key, value] of Object.entries(input.directories)) {
    if (!value.startsWith('/')) throw new Error(`Patroni: directories.${key} must be an absolute path, got "${value}"`);
  }
  if ('etcd3' in input.dcs && (input.dcs.etcd3.hosts.length === 0 || !input.dcs.etcd3.hosts.every(isHostPort))) {
    throw new Error(`Patroni: etcd3.hosts must be host:port entries, got ${JSON.stringify(input.dcs.etcd3.hosts)}`);
  }
}

/**
 * One member's Patroni configuration. Pure apart from reading the project's postgresql.conf and
 * pg_hba file when the input does not carry their text.
 */
export function renderPatroniConfig(input: PatroniInput): PatroniConfig {
  checkInput(input);
  const prod = input.environment === 'prod';
  const tlsDirectory = input.tls ? (input.tls.directory ?? TLS_DIRECTORY) : undefined;
  const serverSettings = readServerSettings(input.postgresqlConf ?? readFileSync(join(DIRECTORY, 'config/postgresql.conf'), 'utf8'));
  const hbaRules = readHbaRules(input.pgHba ?? readFileSync(join(DIRECTORY, input.tls ? 'config/pg_hba-tls.conf' : 'config/pg_hba.conf'), 'utf8'));

  // postgresql.conf's values of the parameters Patroni puts on the command line, then Patroni's
  // replication needs for those the file leaves unset.
  const commandLine: Record<string, string | number> = {};
  for (const name of PATRONI_COMMAND_LINE_PARAMETERS) {
    const fromFile = serverSettings.get(name);
    const value = fromFile ?? REPLICATION_DEFAULTS[name];
    if (value !== undefined) commandLine[name] = /^\d+$/.test(String(value)) ? Number(value) : value;
  }

  // Slots keep WAL for a member that is away; a quarter of the volume is the most they may hold,
  // so a member lost for days costs it a re-clone instead of filling the primary's disk.
  const storageMb = Math.floor(memoryBytes(input.storage ?? '100Gi') / 2 ** 20);
  const dynamicParameters: Record<string, string | number> = {
    ...commandLine,
    max_slot_wal_keep_size: `${Math.max(1024, Math.floor(storageMb / 4))}MB`,
  };

  const localParameters: Record<string, string | number> = {
    unix_socket_directories: input.directories.socket,
    ...(input.memory ? parametersOf(memoryArgs(input.memory.limit, input.memory.sharedBuffersRatio ?? 0.25)) : {}),
    ...(tlsDirectory ? parametersOf(tlsArgs(tlsDirectory)) : {}),
    // Local, not in the DCS: a stack that turns backups on (or off) changes patroni.yml, which its
    // rolling update applies (archive_mode needs the restart it gets); the DCS is written once.
    ...(input.backup ? archiveParameters() : {}),
  };

  const verified = (username: string): PatroniUser => (tlsDirectory ? { username, sslmode: 'verify-full', sslrootcert: `${tlsDirectory}/${TLS_FILES.ca}` } : { username });

  return {
    scope: input.scope,
    ...(input.member.name !== undefined ? { name: input.member.name } : {}),
    log: { level: 'INFO' },
    restapi: {
      listen: input.member.restApi.listen,
      ...(input.member.restApi.connectAddress !== undefined ? { connect_address: input.member.restApi.connectAddress } : {}),
      ...(tlsDirectory ? { certfile: `${tlsDirectory}/${TLS_FILES.certificate}`, keyfile: `${tlsDirectory}/${TLS_FILES.key}`, cafile: `${tlsDirectory}/${TLS_FILES.ca}` } : {}),
    },
    ...('kubernetes' in input.dcs
      ? {
          kubernetes: {
            ...(input.dcs.kubernetes.namespace !== undefined ? { namespace: input.dcs.kubernetes.namespace } : {}),
            ...(input.dcs.kubernetes.labels !== undefined ? { labels: { ...input.dcs.kubernetes.labels } } : {}),
            ...(input.dcs.kubernetes.scopeLabel ? { scope_label: input.dcs.kubernetes.scopeLabel } : {}),
            ...(input.dcs.kubernetes.roleLabel ? { role_label: input.dcs.kubernetes.roleLabel } : {}),
            use_endpoints: input.dcs.kubernetes.useEndpoints ?? true,
            ...(input.dcs.kubernetes.podIp ? { pod_ip: input.dcs.kubernetes.podIp } : {}),
            ...(input.dcs.kubernetes.ports ? { ports: input.dcs.kubernetes.ports.map((port) => ({ ...port })) } : {}),
            ...(input.dcs.kubernetes.bypassApiService !== undefined ? { bypass_api_service: input.dcs.kubernetes.bypassApiService } : {}),
          },
        }
      : { etcd3: { hosts: [...input.dcs.etcd3.hosts] } }),
    bootstrap: {
      dcs: {
        ...PATRONI_TIMING,
        maximum_lag_on_failover: MAXIMUM_LAG_ON_FAILOVER,
        // A crashed primary whose Patroni survived is restarted in place; in prod, where a failover
        // loses nothing, only for 30 s before the synchronous standby takes over.
        primary_start_timeout: prod ? 30 : 300,
        check_timeline: true,
        synchronous_mode: prod,
        synchronous_mode_strict: false,
        synchronous_node_count: 1,
        failsafe_mode: prod || input.environment === 'staging',
        postgresql: { use_pg_rewind: true, use_slots: true, parameters: dynamicParameters },
      },
      // As the image's initdb (POSTGRES_INITDB_ARGS in index.ts), with checksums (the default from
      // PostgreSQL 18 on, stated for older servers such as the drill's 15).
      initdb: [{ encoding: 'UTF8' }, { 'auth-local': 'peer' }, { 'auth-host': 'scram-sha-256' }, 'data-checksums'],
      ...(input.postBootstrap !== undefined ? { post_bootstrap: input.postBootstrap } : {}),
    },
    postgresql: {
      listen: input.member.postgresql.listen,
      ...(input.member.postgresql.connectAddress !== undefined ? { connect_address: input.member.postgresql.connectAddress } : {}),
      data_dir: input.directories.data,
      bin_dir: input.directories.bin,
      pgpass: input.directories.pgpass,
      custom_conf: input.directories.customConf,
      use_unix_socket: true,
      // In prod nothing acknowledged lives only on a diverged former primary (synchronous mode),
      // so one pg_rewind cannot repair is re-cloned; elsewhere its data is kept for an operator.
      remove_data_directory_on_rewind_failure: prod,
      // A new or re-cloned member copies the leader with pg_basebackup, which first waits for a
      // checkpoint: a spread one (its default) paces its writes over 0.9 × checkpoint_timeout
      // (13.5 min with postgresql.conf), so the member would wait that long to start copying
      // (seen in the drill, right after post-bootstrap's CREATE DATABASE). A fast checkpoint costs
      // the leader one burst of writes and gets the cluster its redundancy back in seconds.
      basebackup: [{ checkpoint: 'fast' }],
      // With backups a new member restores the nearest backup and the archived WAL from the
      // repository (no load on the leader beyond streaming the last moments), falling back to
      // pg_basebackup when there is no backup yet or the repository cannot be read.
      ...(input.backup
        ? {
            create_replica_methods: ['pgbackrest', 'basebackup'] as Array<'pgbackrest' | 'basebackup'>,
            pgbackrest: { ...PGBACKREST_REPLICA_METHOD },
            recovery_conf: { restore_command: RESTORE_COMMAND },
          }
        : {}),
      authentication: {
        superuser: { username: PATRONI_USERS.superuser },
        replication: verified(PATRONI_USERS.replication),
        rewind: verified(PATRONI_USERS.rewind),
      },
      parameters: localParameters,
      pg_hba: hbaRules,
    },
    tags: { nofailover: false, noloadbalance: false, clonefrom: false, nosync: false },
  };
}

/** patroni.yml's text, in YAML 1.1 as Patroni's PyYAML reads it: `on` is quoted, not a boolean. */
export function patroniYaml(config: PatroniConfig): string {
  return `# Rendered by databases/postgresql/patroni.ts; passwords come from the environment.\n${stringify(config, { lineWidth: 0, version: '1.1' })}`;
}

/** Patroni's REST API port, its conventional one. */
export const PATRONI_API_PORT = 8008;

/** The pod label Patroni keeps with each member's role (`replica`; the leader's value depends on Patroni's version). */
export const PATRONI_ROLE_LABEL = 'allixios.io/role';

/** Where a Kubernetes member has its files: the project image's paths (image/Dockerfile) and the mounts. */
export const PATRONI_PATHS = {
  /** patroni.yml, which the image's entrypoint runs Patroni with. */
  config: '/etc/patroni/patroni.yml',
  /** patroni/post-bootstrap.sh. */
  postBootstrap: '/etc/patroni/post-bootstrap.sh',
  /** The official image's data directory, so that a volume of the single server is found where it was. */
  data: '/var/lib/postgresql/18/docker',
  bin: '/usr/lib/postgresql/18/bin',
  socket: '/var/run/postgresql',
  /** In the writable /tmp: the root file system is read-only. */
  pgpass: '/tmp/pgpass',
  customConf: '/etc/postgresql/postgresql.conf',
} as const;

/** What a Kubernetes member's Patroni is configured from: the engine's settings for the stack. */
export interface PatroniMemberSettings {
  environment: Environment;
  /** The cluster's name: the engine's name, which is also its primary Service's and the pods' `app.kubernetes.io/name`. */
  scope: string;
  members: number;
  storage: string;
  memory: { limit: string; sharedBuffersRatio: number };
  tls: boolean;
  /** The PostgreSQL port, named as the primary Service's port (Patroni writes the leader's endpoints with it). */
  port: { name: string; containerPort: number };
  /** The stack backs PostgreSQL up: archiving, replicas from the repository (and the members' pgbackrest.conf, {@link patroniHighAvailability}). */
  backup?: boolean;
}

/**
 * The patroni.yml every Kubernetes member reads (one file for all; each pod's variables say who it
 * is: {@link kubernetesMemberEnvironment}). Kubernetes is the DCS: the leader lock and the leader's
 * address in one Endpoints object named as the primary Service (`use_endpoints`), the members
 * found by their selector labels (`app.kubernetes.io/name` is the scope label: the scope is the
 * engine's name), each member's role in {@link PATRONI_ROLE_LABEL} for the replicas' Service.
 */
export function kubernetesPatroniConfig(settings: PatroniMemberSettings): PatroniConfig {
  return renderPatroniConfig({
    environment: settings.environment,
    scope: settings.scope,
    members: settings.members,
    dcs: {
      kubernetes: {
        scopeLabel: 'app.kubernetes.io/name',
        roleLabel: PATRONI_ROLE_LABEL,
        useEndpoints: true,
        ports: [{ name: settings.port.name, port: settings.port.containerPort }],
      },
    },
    member: { postgresql: { listen: `*:${settings.port.containerPort}` }, restApi: { listen: `0.0.0.0:${PATRONI_API_PORT}` } },
    directories: { data: PATRONI_PATHS.data, bin: PATRONI_PATHS.bin, socket: PATRONI_PATHS.socket, pgpass: PATRONI_PATHS.pgpass, customConf: PATRONI_PATHS.customConf },
    ...(settings.tls ? { tls: {} } : {}),
    memory: settings.memory,
    storage: settings.storage,
    postBootstrap: PATRONI_PATHS.postBootstrap,
    ...(settings.backup ? { backup: true } : {}),
  });
}

/**
 * The variables that tell a member who it is, filled by the Kubernetes target (`MemberValue`):
 * its name (the pod's), its namespace and pod IP (the leader's Endpoints address), the labels that
 * select the cluster, and its addresses as its peers reach them, the per-pod names of the headless
 * Service, which the certificate carries (replication, pg_rewind and the REST API verify them).
 */
export function kubernetesMemberEnvironment(port: number): Record<string, MemberValue> {
  return {
    PATRONI_NAME: { field: 'metadata.name' },
    PATRONI_KUBERNETES_NAMESPACE: { field: 'metadata.namespace' },
    PATRONI_KUBERNETES_POD_IP: { field: 'status.podIP' },
    PATRONI_KUBERNETES_LABELS: 'selectorLabels',
    PATRONI_POSTGRESQL_CONNECT_ADDRESS: { address: port },
    PATRONI_RESTAPI_CONNECT_ADDRESS: { address: PATRONI_API_PORT },
  };
}

/**
 * A member's health from Patroni's REST API, with curl (the project image installs it): ready
 * (`/readiness`: the leader, or a replica whose PostgreSQL runs; a replica still cloning or
 * recovering is not, so the replicas' Service skips it) and alive (`/liveness`: Patroni's HA loop
 * runs; a member busy with a long pg_basebackup or WAL replay stays alive). On a TLS stack over
 * HTTPS, verifying the certificate with the stack's CA and the name `localhost`.
 */
export function patroniHealthCheck(tls: boolean): HealthCheck {
  const url = (path: string) => (tls ? `https://localhost:${PATRONI_API_PORT}${path}` : `http://127.0.0.1:${PATRONI_API_PORT}${path}`);
  const curl = (path: string) => [
    'curl',
    '--fail',
    '--silent',
    '--show-error',
    '--output',
    '/dev/null',
    '--max-time',
    '4',
    ...(tls ? ['--cacert', `${TLS_DIRECTORY}/${TLS_FILES.ca}`] : []),
    url(path),
  ];
  return { command: curl('/readiness'), liveCommand: curl('/liveness'), intervalSeconds: 10, timeoutSeconds: 5, failureThreshold: 6, startupSeconds: startupSeconds() };
}

/**
 * PostgreSQL under Patroni on Kubernetes (databases/postgresql/README.md, "High availability
 * (Patroni)"): the project image, patroni.yml, the post-bootstrap script, the credentials from the
 * engine's Secret, the member's identity from its pod, and the Role Patroni needs for Kubernetes
 * as its DCS: Endpoints (the leader lock with the leader's address, the configuration, the
 * failover and synchronous-standby keys) and its pods (their role label, its member state in
 * their annotations). No Secrets, no ConfigMaps (`use_endpoints`), nothing cluster-wide; Services
 * it never needs to create: the program creates the ones it would.
 */
export function patroniHighAvailability(settings: PatroniMemberSettings, image: { repository: string; tag: string }, pgbackrestConfigFile?: ConfigFile): HighAvailabilitySpec {
  if (Boolean(settings.backup) !== (pgbackrestConfigFile !== undefined)) throw new Error("Patroni: backups need the members' pgbackrest.conf, and the file is for backups only");
  const config = kubernetesPatroniConfig(settings);
  return {
    manager: 'Patroni',
    image,
    // The image's entrypoint (patroni /etc/patroni/patroni.yml), not the server's command line.
    args: [],
    env: { ...patroniEnvironment(), ALLIXIOS_REWIND_ROLE: PATRONI_USERS.rewind },
    memberEnv: kubernetesMemberEnvironment(settings.port.containerPort),
    configFiles: [
      { source: 'patroni/patroni.yml', content: patroniYaml(config), mountPath: PATRONI_PATHS.config },
      { source: 'patroni/post-bootstrap.sh', mountPath: PATRONI_PATHS.postBootstrap, executable: true },
      ...(pgbackrestConfigFile ? [pgbackrestConfigFile] : []),
    ],
    ports: [{ name: 'patroni', containerPort: PATRONI_API_PORT }],
    roleLabel: { key: PATRONI_ROLE_LABEL, replica: 'replica' },
    // The keys besides the leader's that Patroni keeps as Endpoints: a Service of the same name
    // keeps each from being taken for a leftover of a deleted Service.
    managedServices: ['-config', '-failover', '-sync'],
    kubernetesAccess: [
      { apiGroups: [''], resources: ['endpoints'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch', 'update', 'patch'] },
    ],
    healthCheck: patroniHealthCheck(settings.tls),
    // SIGHUP to Patroni (PID 1): it reloads PostgreSQL's configuration (and so its certificate)
    // and its REST API's certificate when the serial changed.
    tlsReload: { command: ['sh', '-c', 'kill -HUP 1'] },
  };
}
