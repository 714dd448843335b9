/**
 * ClickHouse replicated: what a member of a stack of several ClickHouse servers runs besides the
 * single server's configuration (databases/clickhouse/README.md, "Replicas", says why each piece is
 * there). Kubernetes only: the Docker target runs one server and never sees this.
 *
 * The topology is one shard of `replicas` members. The schema lives in `Replicated` databases
 * (ClickHouse's own DDL replication through ClickHouse Keeper) whose tables are
 * `Replicated*MergeTree` (data replication: each insert is written on one member and fetched by
 * the others over the interserver port). Nothing here elects or fails over: every member serves
 * reads and writes, and Keeper, a companion workload of its own (three members, see
 * {@link CLICKHOUSE_KEEPER}), orders the replication log.
 *
 * No secret value is rendered: the interserver password and the cluster secret reach the
 * configuration through `from_env`, from variables the target fills from the engine's Secret.
 */
import { TLS_FILES, type EnvValue, type HighAvailabilitySpec, type MemberHost, type MemberValue, type PortSpec } from '../engine.ts';

/**
 * The cluster of `remote_servers` that lists every member: the `ON CLUSTER` target that creates
 * a `Replicated` database on each of them, and what the bootstrap reads (`system.clusters`) to
 * know that it talks to a replicated server and which member it reached.
 */
export const CLUSTER = 'allixios';

/** The one shard (the `{shard}` macro): every member holds all the data. */
export const SHARD = '01';

/** Where a `Replicated` database keeps its DDL log and replicas in Keeper. */
export function replicatedDatabasePath(database: string): string {
  return `/clickhouse/databases/${database}`;
}

/**
 * ClickHouse Keeper, the coordination service of the replicas, run beside ClickHouse by the
 * stack's companion mechanism. Its names, ports and size are written here once: the ClickHouse
 * members' configuration ({@link replicationConfig}) and the companion workload read the same.
 */
export const CLICKHOUSE_KEEPER = {
  /** The StatefulSet: pods `clickhouse-keeper-0..2`. */
  name: 'clickhouse-keeper',
  /** The governing headless Service, under which each member has its stable name. */
  headlessService: 'clickhouse-keeper-headless',
  image: 'clickhouse/clickhouse-keeper',
  /** Three: a quorum of two survives the loss of any one member (Raft). */
  replicas: 3,
  ports: {
    /** The ZooKeeper-compatible client port (ClickHouse's `<zookeeper>` nodes), plain. */
    client: 9181,
    /** The same over TLS, on a stack that serves TLS (`tcp_port_secure`). */
    clientSecure: 9281,
    /** Raft between the Keeper members (`raft_configuration`), TLS on a TLS stack (`<secure>`). */
    raft: 9234,
    /**
     * Keeper's HTTP control (`http_control`): the readiness endpoint the probes ask, but also an
     * unauthenticated API that can create and delete nodes. Never declared as a port of the
     * workload, so its NetworkPolicy admits nobody to it: only the probes, inside the pod, reach it.
     */
    control: 9182,
  },
  /** Where Keeper keeps its Raft log and snapshots: a persistent volume, never an emptyDir. */
  dataPath: '/var/lib/clickhouse-keeper',
  /**
   * Keeper holds metadata only (the replication logs, parts' names and checksums, the DDL logs),
   * not data: a few hundred MB at this platform's scale, snapshots included.
   */
  storage: { staging: '5Gi', prod: '10Gi' },
} as const;

/** Keeper's client port on a stack with or without TLS. */
export function keeperClientPort(tls: boolean): number {
  return tls ? CLICKHOUSE_KEEPER.ports.clientSecure : CLICKHOUSE_KEEPER.ports.client;
}

/** Each Keeper member, as a `MemberHost` the Kubernetes target turns into its stable name. */
export function keeperMembers(): MemberHost[] {
  return Array.from({ length: CLICKHOUSE_KEEPER.replicas }, (_, ordinal) => ({ workload: CLICKHOUSE_KEEPER.name, ordinal }));
}

/** Replica-to-replica part exchange (`interserver_http_port`, `interserver_https_port` on a TLS stack). */
export const INTERSERVER_PORTS = { http: 9009, https: 9010 } as const;

/** The user replicas authenticate each other with on the interserver port (its password: a secret). */
export const INTERSERVER_USER = 'interserver';

/** The secrets a replicated member needs, besides the engine's users. */
export const REPLICATION_SECRETS = [
  { key: 'interserver-password', description: `${INTERSERVER_USER}, replicas fetching parts from each other on the interserver port` },
  { key: 'cluster-secret', description: `the cluster ${CLUSTER}'s shared secret: queries between members (cluster(), Distributed) run as the initial user` },
] as const;

/** The variables the configuration reads with `from_env`; those holding secrets are filled from the engine's Secret. */
export const REPLICATION_ENV = {
  replica: 'CLICKHOUSE_REPLICA',
  interserverHost: 'CLICKHOUSE_INTERSERVER_HOST',
  interserverPassword: 'CLICKHOUSE_INTERSERVER_PASSWORD',
  clusterSecret: 'CLICKHOUSE_CLUSTER_SECRET',
  memberHost: (ordinal: number) => `CLICKHOUSE_MEMBER_HOST_${ordinal}`,
  keeperHost: (ordinal: number) => `CLICKHOUSE_KEEPER_HOST_${ordinal}`,
} as const;

export interface ReplicationSettings {
  /** The StatefulSet's members. */
  replicas: number;
  /** The stack serves TLS: Keeper, the interserver port and the native port between members use it too. */
  tls: boolean;
  /**
   * The engine's TLS directory (`tls.crt`, `tls.key`, `ca.crt`), on a TLS stack: members verify
   * Keeper and each other with its CA and present its certificate to Keeper, which requires one.
   */
  tlsDirectory: string;
}

/** The native port the members reach each other on for `ON CLUSTER` and `cluster()` (the engine's own). */
function nativePort(tls: boolean): number {
  return tls ? 9440 : 9000;
}

const indent = (lines: string[], by: number) => lines.map((line) => `${' '.repeat(by)}${line}`);

/**
 * The `<client>` block of an openSSL section, as ClickHouse and Keeper read it (unindented lines):
 * the server connected to verified by the stack CA only and by the name connected to, TLS 1.2 and
 * later; with `certificate`, this side's certificate presented (Keeper requires one of every
 * client). One block for the members' replication.xml, Keeper's config and the backup jobs' client.
 */
export function openSslClient(settings: { caFile: string; certificate?: { file: string; key: string }; cacheSessions?: boolean }): string[] {
  const { caFile, certificate, cacheSessions } = settings;
  return [
    '<client>',
    ...indent(
      [
        ...(certificate ? [`<certificateFile>${certificate.file}</certificateFile>`, `<privateKeyFile>${certificate.key}</privateKeyFile>`] : []),
        `<caConfig>${caFile}</caConfig>`,
        '<loadDefaultCAFile>false</loadDefaultCAFile>',
        '<verificationMode>relaxed</verificationMode>',
        '<extendedVerification>true</extendedVerification>',
        '<invalidCertificateHandler>',
        '    <name>RejectCertificateHandler</name>',
        '</invalidCertificateHandler>',
        '<disableProtocols>sslv2,sslv3,tlsv1,tlsv1_1</disableProtocols>',
        ...(cacheSessions ? ['<cacheSessions>true</cacheSessions>'] : []),
      ],
      4,
    ),
    '</client>',
  ];
}

/**
 * config.d/replication.xml of a member: who it is (macros), where Keeper is, the cluster of every
 * member, the interserver port and its credentials, and on a TLS stack how it verifies Keeper and
 * its peers. Generated, because the member and Keeper lists depend on the stack; every value that
 * differs per member or is secret comes from the environment (`from_env`).
 */
export function replicationConfig(settings: ReplicationSettings): string {
  const { replicas, tls } = settings;
  if (!Number.isInteger(replicas) || replicas < 2) throw new Error(`ClickHouse replication: expected at least 2 members, got ${replicas}`);
  const secure = tls ? ['<secure>1</secure>'] : [];
  const keeperNodes = keeperMembers().flatMap((_, ordinal) => [
    '<node>',
    ...indent([`<host from_env="${REPLICATION_ENV.keeperHost(ordinal)}"/>`, `<port>${keeperClientPort(tls)}</port>`, ...secure], 4),
    '</node>',
  ]);
  const members = Array.from({ length: replicas }, (_, ordinal) => [
    '<replica>',
    ...indent([`<host from_env="${REPLICATION_ENV.memberHost(ordinal)}"/>`, `<port>${nativePort(tls)}</port>`, ...secure], 4),
    '</replica>',
  ]).flat();
  const interserver = tls
    ? [
        '<!-- Over TLS only: the plain interserver port stays removed (allixios.xml). Peers verify this',
        "     member's certificate by the name below, which it carries (*.clickhouse-headless...). -->",
        `<interserver_https_port>${INTERSERVER_PORTS.https}</interserver_https_port>`,
        `<interserver_https_host from_env="${REPLICATION_ENV.interserverHost}"/>`,
      ]
    : [
        '<!-- allixios.xml removes the port on a single server; a replica needs it back, with credentials. -->',
        `<interserver_http_port>${INTERSERVER_PORTS.http}</interserver_http_port>`,
        `<interserver_http_host from_env="${REPLICATION_ENV.interserverHost}"/>`,
      ];
  const client = tls
    ? [
        '',
        '<!-- How this member verifies Keeper and its peers (interserver fetches, the native port of',
        '     cluster queries): the stack CA only, and the name it connected to. It presents its own',
        "     certificate, which Keeper requires of every client (keeper.ts); its peers' ports ignore it. -->",
        '<openSSL>',
        ...indent(
          openSslClient({
            caFile: `${settings.tlsDirectory}/${TLS_FILES.ca}`,
            certificate: { file: `${settings.tlsDirectory}/${TLS_FILES.certificate}`, key: `${settings.tlsDirectory}/${TLS_FILES.key}` },
            cacheSessions: true,
          }),
          4,
        ),
        '</openSSL>',
      ]
    : [];
  const body = [
    '<!-- Who this member is: {shard} and {replica} in the Replicated databases and the default',
    '     replica path of their tables. The replica is the pod name, stable across restarts. -->',
    '<macros>',
    `    <shard>${SHARD}</shard>`,
    `    <replica from_env="${REPLICATION_ENV.replica}"/>`,
    '</macros>',
    '',
    '<!-- ClickHouse Keeper (the companion workload): replication logs, DDL logs, block numbers. -->',
    '<zookeeper>',
    ...indent(keeperNodes, 4),
    '</zookeeper>',
    '',
    '<!-- Every replicated table of a Replicated database is created without arguments and gets',
    "     these (ClickHouse's defaults, stated because the schema's replicated form relies on them). -->",
    '<default_replica_path>/clickhouse/tables/{uuid}/{shard}</default_replica_path>',
    '<default_replica_name>{replica}</default_replica_name>',
    '',
    `<!-- Every member, by its stable name: the ON CLUSTER target that creates each Replicated`,
    '     database on every member. The secret lets a query between members run as its initial user. -->',
    '<remote_servers>',
    `    <${CLUSTER}>`,
    `        <secret from_env="${REPLICATION_ENV.clusterSecret}"/>`,
    '        <shard>',
    '            <internal_replication>true</internal_replication>',
    ...indent(members, 12),
    '        </shard>',
    `    </${CLUSTER}>`,
    '</remote_servers>',
    '',
    ...interserver,
    '<interserver_http_credentials>',
    `    <user>${INTERSERVER_USER}</user>`,
    `    <password from_env="${REPLICATION_ENV.interserverPassword}"/>`,
    '</interserver_http_credentials>',
    ...client,
  ];
  return [
    '<?xml version="1.0"?>',
    '<!--',
    '  A replicated member of the Allixios analytics ClickHouse (generated by',
    '  databases/clickhouse/replication.ts; databases/clickhouse/README.md, "Replicas", says why).',
    '  No secret and nothing particular to one member is written here: those values come from',
    '  the environment (from_env), which the Kubernetes target fills per pod and from the Secret.',
    '-->',
    '<clickhouse>',
    ...indent(body, 4).map((line) => (line.trim() === '' ? '' : line)),
    '</clickhouse>',
    '',
  ].join('\n');
}

/** The port replicas fetch parts on, as the description declares it (peers only). */
export function interserverPort(tls: boolean): PortSpec {
  return tls ? { name: 'interserver-tls', containerPort: INTERSERVER_PORTS.https } : { name: 'interserver', containerPort: INTERSERVER_PORTS.http };
}

/**
 * The engine as a replicated member (`EngineDescription.highAvailability`): ClickHouse clusters by
 * itself, so no image, command, role label or Kubernetes access of a manager; the members' own
 * configuration file, their identity and peers' names from the target, the interserver port open
 * to members only.
 */
export function clickhouseHighAvailability(settings: ReplicationSettings): HighAvailabilitySpec {
  const memberEnv: Record<string, MemberValue> = {
    [REPLICATION_ENV.replica]: { field: 'metadata.name' },
    [REPLICATION_ENV.interserverHost]: { host: {} },
  };
  for (let ordinal = 0; ordinal < settings.replicas; ordinal++) memberEnv[REPLICATION_ENV.memberHost(ordinal)] = { host: { ordinal } };
  keeperMembers().forEach((host, ordinal) => (memberEnv[REPLICATION_ENV.keeperHost(ordinal)] = { host }));
  const env: Record<string, EnvValue> = {
    [REPLICATION_ENV.interserverPassword]: { secret: 'interserver-password' },
    [REPLICATION_ENV.clusterSecret]: { secret: 'cluster-secret' },
  };
  return {
    manager: 'ClickHouse replication (Keeper)',
    env,
    memberEnv,
    configFiles: [{ source: 'config/config.d/replication.xml', content: replicationConfig(settings), mountPath: '/etc/clickhouse-server/config.d/replication.xml' }],
    ports: [interserverPort(settings.tls)],
  };
}
