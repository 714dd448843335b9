/**
 * ClickHouse Keeper, the coordination service of ClickHouse's replicas, as a companion workload
 * beside them ({@link keeperCompanion}: three members, {@link CLICKHOUSE_KEEPER}), and its own
 * configuration. The companion and the ClickHouse members agree on names and ports by
 * construction: both come from `replication.ts`.
 *
 * Each member reads the same file; who it is comes from its environment: `KEEPER_SERVER_ID` (its
 * ordinal + 1: Raft ids are positive), set by its start command from the pod's name, and the
 * stable names of the three members, the same `CLICKHOUSE_KEEPER_HOST_<i>` variables the
 * ClickHouse members use.
 *
 * Image `clickhouse/clickhouse-keeper` at ClickHouse's own version (both are built from one
 * release). Its entrypoint (docker/keeper/entrypoint.sh) runs `clickhouse-keeper` with
 * `$KEEPER_CONFIG` as the container user (101), after checking that `$CLICKHOUSE_DATA_DIR` and
 * `$LOG_DIR` are writable: the first is the member's volume, the second a scratch directory, so
 * the root filesystem stays read-only. Keeper reloads its certificate when the files change, as
 * the server does (the CertificateReloader of programs/keeper/Keeper.cpp): no reload command.
 */
import type { CompanionSpec, ComputeResources, Environment, MemberValue } from '../engine.ts';
import { TLS_FILES } from '../engine.ts';
import { CLICKHOUSE_KEEPER, keeperClientPort, keeperMembers, openSslClient, REPLICATION_ENV } from './replication.ts';

/** The variable holding a Keeper member's Raft id, ordinal + 1 (its start command sets it). */
export const KEEPER_SERVER_ID_VARIABLE = 'KEEPER_SERVER_ID';

/** Where a Keeper member reads its configuration (the image entrypoint's `KEEPER_CONFIG`). */
export const KEEPER_CONFIG_PATH = '/etc/clickhouse-keeper/keeper_config.xml';

/** Where a Keeper member finds its certificate, key and the stack CA, on a TLS stack. */
export const KEEPER_TLS_DIRECTORY = '/etc/clickhouse-keeper/tls';

/**
 * The four-letter commands Keeper answers on its client port: those that read (health, state,
 * `mntr` for monitoring). Not `rcvr` (forces a member out of its cluster), `csnp`, `rqld`/`ydld`
 * (snapshots and leadership) or the `crst`/`srst` resets: maintenance does those by hand, with
 * the allow-list changed.
 */
export const KEEPER_FOUR_LETTER_WORDS = ['ruok', 'isro', 'mntr', 'srvr', 'stat', 'conf', 'envi', 'dirs', 'lgif', 'wchs'] as const;

/**
 * What a Keeper member runs: its Raft id from its pod name (`clickhouse-keeper-2` is id 3), then
 * the image's entrypoint. A name without an ordinal is refused rather than given id 1.
 */
export function keeperStartScript(entrypoint = '/entrypoint.sh'): string {
  return [
    'if [[ "${HOSTNAME:-}" =~ -([0-9]+)$ ]]; then',
    `  export ${KEEPER_SERVER_ID_VARIABLE}=$(( 10#\${BASH_REMATCH[1]} + 1 ))`,
    'else',
    `  echo "clickhouse-keeper: the pod name '\${HOSTNAME:-}' ends in no ordinal; expected <statefulset>-<ordinal>" >&2`,
    '  exit 1',
    'fi',
    `exec ${entrypoint}`,
  ].join('\n');
}

/**
 * The probes, over Keeper's HTTP control on the loopback (bash's /dev/tcp: the image has bash,
 * the probes need nothing else). Ready: `/ready` answers 200, which Keeper does once it is the
 * leader or a follower that knows its leader, i.e. part of a quorum. Alive: the port accepts a
 * connection, which it does while the member waits for a quorum too.
 */
export function keeperProbeScript(kind: 'ready' | 'live', port: number = CLICKHOUSE_KEEPER.ports.control): string {
  const connect = `exec 3<>/dev/tcp/127.0.0.1/${port}`;
  if (kind === 'live') return connect;
  return `${connect} && printf 'GET /ready HTTP/1.0\\r\\n\\r\\n' >&3 && read -r _ status _ <&3 && [ "$status" = 200 ]`;
}

const KEEPER_RESOURCES: Record<Environment, ComputeResources> = {
  dev: { requests: { cpu: '50m', memory: '128Mi' }, limits: { cpu: '250m', memory: '256Mi' } },
  ephemeral: { requests: { cpu: '50m', memory: '128Mi' }, limits: { cpu: '250m', memory: '256Mi' } },
  staging: { requests: { cpu: '100m', memory: '256Mi' }, limits: { cpu: '500m', memory: '512Mi' } },
  prod: { requests: { cpu: '250m', memory: '512Mi' }, limits: { cpu: '1', memory: '1Gi' } },
};

export interface KeeperCompanionInput {
  environment: Environment;
  /** ClickHouse's version: the Keeper image of the same release. */
  version: string;
  tls: boolean;
}

/**
 * The Keeper ensemble as a companion of ClickHouse (`clickhouse-keeper`, three members): its
 * client port open to the ClickHouse members only (not to the engine's clients, who never need
 * Keeper), Raft open to its own members, the HTTP control to nobody; a volume per member for the
 * Raft log and snapshots; all members started at once, since none is ready before a quorum is.
 */
export function keeperCompanion(input: KeeperCompanionInput): CompanionSpec {
  const clientPort = keeperClientPort(input.tls);
  return {
    name: 'keeper',
    description: `ClickHouse Keeper: ${CLICKHOUSE_KEEPER.replicas} Raft members coordinating the replicas (replication and DDL logs); a majority of them keeps the replicated tables writable`,
    component: 'analytics-keeper',
    image: { repository: CLICKHOUSE_KEEPER.image, tag: input.version },
    command: ['bash', '-c', keeperStartScript()],
    replicas: CLICKHOUSE_KEEPER.replicas,
    ports: [
      { name: input.tls ? 'keeper-tls' : 'keeper', containerPort: clientPort, from: ['engine'] },
      { name: 'raft', containerPort: CLICKHOUSE_KEEPER.ports.raft, from: ['peers'] },
    ],
    connectsToEngine: false,
    runAs: { user: 101, group: 101 },
    resources: KEEPER_RESOURCES[input.environment],
    env: { KEEPER_CONFIG: KEEPER_CONFIG_PATH, CLICKHOUSE_DATA_DIR: CLICKHOUSE_KEEPER.dataPath, LOG_DIR: '/var/log/clickhouse-keeper' },
    memberEnv: keeperMemberEnv(),
    configFiles: [{ source: 'config/keeper_config.xml', mountPath: KEEPER_CONFIG_PATH, content: keeperConfig({ tls: input.tls, tlsDirectory: KEEPER_TLS_DIRECTORY }) }],
    secretFiles: [],
    scratch: [
      { path: '/tmp', sizeLimit: '64Mi' },
      // Checked writable by the entrypoint; Keeper logs to the console.
      { path: '/var/log/clickhouse-keeper', sizeLimit: '16Mi' },
    ],
    volume: { path: CLICKHOUSE_KEEPER.dataPath, size: input.environment === 'prod' ? CLICKHOUSE_KEEPER.storage.prod : CLICKHOUSE_KEEPER.storage.staging },
    healthCheck: {
      command: ['bash', '-c', keeperProbeScript('ready')],
      liveCommand: ['bash', '-c', keeperProbeScript('live')],
      intervalSeconds: 10,
      timeoutSeconds: 5,
      failureThreshold: 6,
      // Replaying a long Raft log after a restart; a quorum may take a while on a fresh ensemble.
      startupSeconds: 120,
    },
    parallel: true,
    terminationGracePeriodSeconds: 30,
    ...(input.tls ? { tls: { directory: KEEPER_TLS_DIRECTORY } } : {}),
  };
}

/** The members' stable names, as the variables a Keeper member (and a ClickHouse member) reads them from. */
export function keeperMemberEnv(): Record<string, MemberValue> {
  return Object.fromEntries(keeperMembers().map((host, ordinal) => [REPLICATION_ENV.keeperHost(ordinal), { host }]));
}

export interface KeeperConfigSettings {
  tls: boolean;
  /** The TLS directory mounted in the Keeper pods (cert-manager's `tls.crt`, `tls.key`, `ca.crt`), on a TLS stack. */
  tlsDirectory: string;
}

/**
 * keeper_config.xml of a Keeper member, the whole file (`$KEEPER_CONFIG`): the client port (9181,
 * or on a TLS stack 9281 only), Raft between the three members on 9234 (TLS on a TLS stack), the
 * HTTP control on 9182 for the probes, the read-only four-letter commands, the log and snapshots
 * on the data volume, logs to the console. On a TLS stack both the client port and Raft require
 * a client certificate of the stack CA (mutual TLS): Keeper itself authenticates nobody, so the
 * certificate and the NetworkPolicy are what keeps a stranger from rewriting the replicas' state.
 */
export function keeperConfig(settings: KeeperConfigSettings): string {
  const { tls, tlsDirectory } = settings;
  const file = (name: string) => `${tlsDirectory}/${name}`;
  const servers = keeperMembers().flatMap((_, ordinal) => [
    '            <server>',
    `                <id>${ordinal + 1}</id>`,
    `                <hostname from_env="${REPLICATION_ENV.keeperHost(ordinal)}"/>`,
    `                <port>${CLICKHOUSE_KEEPER.ports.raft}</port>`,
    '            </server>',
  ]);
  const port = tls ? `        <tcp_port_secure>${keeperClientPort(true)}</tcp_port_secure>` : `        <tcp_port>${keeperClientPort(false)}</tcp_port>`;
  const openSsl = tls
    ? [
        '',
        '    <!-- Server: the client port and Raft, to ClickHouse and the other members, each of which',
        '         must present a certificate of the stack CA (strict). Client: Raft to the other members,',
        "         verified by the stack CA and by the name connected to, with this member's certificate. -->",
        '    <openSSL>',
        '        <server>',
        `            <certificateFile>${file(TLS_FILES.certificate)}</certificateFile>`,
        `            <privateKeyFile>${file(TLS_FILES.key)}</privateKeyFile>`,
        `            <caConfig>${file(TLS_FILES.ca)}</caConfig>`,
        '            <verificationMode>strict</verificationMode>',
        '            <loadDefaultCAFile>false</loadDefaultCAFile>',
        '            <disableProtocols>sslv2,sslv3,tlsv1,tlsv1_1</disableProtocols>',
        '            <preferServerCiphers>true</preferServerCiphers>',
        '        </server>',
        ...openSslClient({ caFile: file(TLS_FILES.ca), certificate: { file: file(TLS_FILES.certificate), key: file(TLS_FILES.key) } }).map((line) => `        ${line}`),
        '    </openSSL>',
      ]
    : [];
  return [
    '<?xml version="1.0"?>',
    '<!--',
    '  A member of the Allixios ClickHouse Keeper (generated by databases/clickhouse/keeper.ts).',
    "  Its Raft id and the members' names come from the environment; its data (Raft log and",
    '  snapshots) lives on a persistent volume: a Keeper that loses it leaves the replicated',
    '  tables read-only until it is rebuilt (databases/clickhouse/README.md, "Replicas").',
    '-->',
    '<clickhouse>',
    '    <logger>',
    '        <level>information</level>',
    '        <console>true</console>',
    '    </logger>',
    '    <listen_host>0.0.0.0</listen_host>',
    '    <listen_try>false</listen_try>',
    `    <path>${CLICKHOUSE_KEEPER.dataPath}</path>`,
    '',
    '    <keeper_server>',
    port,
    `        <server_id from_env="${KEEPER_SERVER_ID_VARIABLE}"/>`,
    `        <log_storage_path>${CLICKHOUSE_KEEPER.dataPath}/coordination/log</log_storage_path>`,
    `        <snapshot_storage_path>${CLICKHOUSE_KEEPER.dataPath}/coordination/snapshots</snapshot_storage_path>`,
    `        <four_letter_word_white_list>${KEEPER_FOUR_LETTER_WORDS.join(',')}</four_letter_word_white_list>`,
    '        <!-- Reached by the probes only: no Service port and no NetworkPolicy rule name it. -->',
    '        <http_control>',
    `            <port>${CLICKHOUSE_KEEPER.ports.control}</port>`,
    '            <readiness>',
    '                <endpoint>/ready</endpoint>',
    '            </readiness>',
    '        </http_control>',
    '        <coordination_settings>',
    '            <operation_timeout_ms>10000</operation_timeout_ms>',
    '            <session_timeout_ms>30000</session_timeout_ms>',
    '            <raft_logs_level>information</raft_logs_level>',
    '        </coordination_settings>',
    '        <raft_configuration>',
    ...(tls ? ['            <secure>true</secure>'] : []),
    ...servers,
    '        </raft_configuration>',
    '    </keeper_server>',
    ...openSsl,
    '</clickhouse>',
    '',
  ].join('\n');
}
