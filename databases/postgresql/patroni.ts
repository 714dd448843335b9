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
import { memoryBytes, moduleDirectory, TLS_FILES, type EnvValue, type Environment } from '../engine.ts';
import { memoryArgs, TLS_DIRECTORY, tlsArgs } from './index.ts';

const DIRECTORY = moduleDirectory(import.meta.url);

/** The DCS holding the leader lock and the cluster's dynamic configuration. */
export type PatroniDcs =
  | {
      /** Kubernetes itself (no etcd to run): Patroni's `kubernetes` section. */
      kubernetes: {
        /** The namespace of the pods and of the Endpoints/ConfigMaps Patroni keeps its state in. */
        namespace: string;
        /** Labels of every pod of the cluster (and of the objects Patroni creates). */
        labels: Record<string, string>;
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

/** Where one member listens and how the others reach it (`host:port`). */
export interface PatroniMemberAddresses {
  /** The member's name, unique in the cluster (the pod's name on Kubernetes). */
  name: string;
  postgresql: { listen: string; connectAddress: string };
  restApi: { listen: string; connectAddress: string };
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
  name: string;
  log: { level: 'INFO' };
  restapi: { listen: string; connect_address: string; certfile?: string; keyfile?: string; cafile?: string };
  kubernetes?: {
    namespace: string;
    labels: Record<string, string>;
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
  };
  postgresql: {
    listen: string;
    connect_address: string;
    data_dir: string;
    bin_dir: string;
    pgpass: string;
    custom_conf: string;
    use_unix_socket: boolean;
    remove_data_directory_on_rewind_failure: boolean;
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
    if (!isHostPort(value)) throw new Error(`Patroni: ${key} must be host:port, got "${value}"`);
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
  };

  const verified = (username: string): PatroniUser => (tlsDirectory ? { username, sslmode: 'verify-full', sslrootcert: `${tlsDirectory}/${TLS_FILES.ca}` } : { username });

  return {
    scope: input.scope,
    name: input.member.name,
    log: { level: 'INFO' },
    restapi: {
      listen: input.member.restApi.listen,
      connect_address: input.member.restApi.connectAddress,
      ...(tlsDirectory ? { certfile: `${tlsDirectory}/${TLS_FILES.certificate}`, keyfile: `${tlsDirectory}/${TLS_FILES.key}`, cafile: `${tlsDirectory}/${TLS_FILES.ca}` } : {}),
    },
    ...('kubernetes' in input.dcs
      ? {
          kubernetes: {
            namespace: input.dcs.kubernetes.namespace,
            labels: { ...input.dcs.kubernetes.labels },
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
    },
    postgresql: {
      listen: input.member.postgresql.listen,
      connect_address: input.member.postgresql.connectAddress,
      data_dir: input.directories.data,
      bin_dir: input.directories.bin,
      pgpass: input.directories.pgpass,
      custom_conf: input.directories.customConf,
      use_unix_socket: true,
      // In prod nothing acknowledged lives only on a diverged former primary (synchronous mode),
      // so one pg_rewind cannot repair is re-cloned; elsewhere its data is kept for an operator.
      remove_data_directory_on_rewind_failure: prod,
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
