/**
 * Elasticsearch as a cluster of several nodes on Kubernetes (`HighAvailabilitySpec`): every node is
 * master-eligible and holds data (Elasticsearch's default roles), finds its peers through the
 * headless Service, talks to them over transport TLS on port 9300, and elects its master and
 * allocates shards by itself: nothing here decides anything for the cluster. A stack of one member
 * (Docker, ephemeral stacks) runs a single node instead (`discovery.type: single-node`), which forms
 * its cluster by itself and keeps the transport layer on loopback.
 *
 * See README.md ("A cluster of nodes") for the topology, the first formation and scaling.
 */
import type { HealthCheck, HighAvailabilitySpec } from '../engine.ts';

/** The transport port (node to node), open to the members only. */
export const TRANSPORT_PORT = 9300;

/** A single node: elects itself, joins no other node, transport on loopback (no peer to reach it). */
export const SINGLE_NODE_SETTINGS: Readonly<Record<string, string>> = {
  'discovery.type': 'single-node',
  'transport.host': '127.0.0.1',
};

/**
 * The member's transport address as the target fills it (`{ address: 9300 }`):
 * `<pod>.<engine>-headless.<namespace>.svc.<cluster domain>:9300`. The start script derives the
 * node's published host and the seed host from it.
 */
export const TRANSPORT_ADDRESS_VARIABLE = 'ALLIXIOS_TRANSPORT_ADDRESS';

/** The zone of the member's node (the pod's copy of the node's `topology.kubernetes.io/zone`), empty when unknown. */
export const ZONE_VARIABLE = 'ALLIXIOS_ZONE';

/** The node attribute allocation awareness uses (`node.attr.zone`). */
export const ZONE_ATTRIBUTE = 'zone';

/**
 * The settings the start script adds at each start, from the member's variables: not literals
 * of the description, since they depend on the pod (its DNS name) and on its node (its zone).
 */
export const START_SETTINGS = ['network.publish_host', 'discovery.seed_hosts', `node.attr.${ZONE_ATTRIBUTE}`, 'cluster.routing.allocation.awareness.attributes'] as const;

/** The StatefulSet's pod names of the first `replicas` members: `<engine>-0`, `<engine>-1`, ... */
export function memberNames(engine: string, replicas: number): string[] {
  return Array.from({ length: replicas }, (_, ordinal) => `${engine}-${ordinal}`);
}

export interface ClusterOptions {
  /** The engine's name: its StatefulSet, its pods' prefix. */
  engine: string;
  replicas: number;
  /**
   * The stack forms a new cluster (`allixios:engines.elasticsearch.options.formCluster`): only
   * then does every member get `cluster.initial_master_nodes`, the names of all the members. See
   * README.md, "The first formation".
   */
  formCluster: boolean;
}

/**
 * The literal settings of every member: multi-node discovery, the transport layer on the pod's
 * network on a fixed port, and, while the stack forms a new cluster, the initial master nodes. The
 * same list on every member (Elastic requires it, or several clusters may form): all of them, so
 * that the first election needs a majority of the members and not one node on its own.
 */
export function clusterSettings(options: ClusterOptions): Record<string, string> {
  return {
    'discovery.type': 'multi-node',
    'transport.host': '0.0.0.0',
    'transport.port': String(TRANSPORT_PORT),
    ...(options.formCluster ? { 'cluster.initial_master_nodes': memberNames(options.engine, options.replicas).join(',') } : {}),
  };
}

export interface StartScriptPaths {
  /** The config directory, where the file realm reads `users` (a link to `secrets/users`). */
  configPath: string;
  /** The image's entrypoint, asked for `eswrapper` again (Elasticsearch as the image starts it). */
  entrypoint: string;
}

/**
 * The member's start: the file realm's link (as a single node does), then the settings that depend
 * on the pod, passed as settings variables, which the Docker distribution reads as settings:
 * - `network.publish_host`: the member's DNS name under the headless Service, which its peers dial
 *   and verify its certificate against (`*.<engine>-headless.<namespace>.svc...`); a pod IP, which
 *   no certificate carries, would fail the peers' full verification;
 * - `discovery.seed_hosts`: the headless Service's name with the transport port, which resolves to
 *   every member's address, ready or not (`publishNotReadyAddresses`); the peers dial it by that
 *   name, which the certificate carries too;
 * - `node.attr.zone` and `cluster.routing.allocation.awareness.attributes: zone`, only when the
 *   member knows its node's zone: awareness on a node without the attribute would keep shards off it.
 * `env` starts the entrypoint with them: shell variables cannot have dots in their names.
 */
export function memberStartScript(paths: StartScriptPaths, before: readonly string[] = []): string {
  return [
    // What the stack's backups need first (backup.ts): the keystore's link, or the web identity token's.
    ...before,
    `ln -sfn secrets/users ${paths.configPath}/users`,
    `address="\${${TRANSPORT_ADDRESS_VARIABLE}%:*}"`,
    `set -- "network.publish_host=$address" "discovery.seed_hosts=\${${TRANSPORT_ADDRESS_VARIABLE}#*.}"`,
    `if [ -n "$${ZONE_VARIABLE}" ]; then set -- "$@" "node.attr.${ZONE_ATTRIBUTE}=$${ZONE_VARIABLE}" "cluster.routing.allocation.awareness.attributes=${ZONE_ATTRIBUTE}"; fi`,
    `exec env "$@" ${paths.entrypoint} eswrapper`,
  ].join('\n');
}

export interface HealthRequest {
  /** `curl` with its TLS options (`--cacert`, `--resolve`) or none. */
  curl: string;
  /** The node's own HTTP address, as `curl` reaches it (`https://localhost:9200`). */
  node: string;
}

/**
 * Ready: the node has joined a cluster with an elected master, as its own cluster state says
 * (`local=true`, answered without asking the master). A node that restarts answers HTTP long before
 * it has rejoined; marking it ready then would let a rolling update restart the next node while
 * this one is still out of the cluster, and lose the master quorum. Not the cluster's health: one
 * red index must not take every node out of the Service. The body is `"master_node":"<id>"` with a
 * master and `"master_node":null` without one.
 */
export function joinedClusterCheck(request: HealthRequest): string[] {
  return [
    'sh',
    '-c',
    [
      `state=$(${request.curl} -fsS --max-time 8 -H @"$ES_MONITOR_AUTH_FILE" "${request.node}/_cluster/state/master_node?local=true") || exit 1`,
      `case "$state" in *'"master_node":"'*) exit 0 ;; esac`,
      `echo "no elected master in this node's cluster state: $state" >&2`,
      'exit 1',
    ].join('\n'),
  ];
}

export interface ClusterDescription extends ClusterOptions {
  /** The start script's paths. */
  paths: StartScriptPaths;
  /** The single node's health check: its liveness and timings stay; readiness becomes {@link joinedClusterCheck}. */
  healthCheck: HealthCheck;
  request: HealthRequest;
  /** Shell lines the start runs first (the backups' links, `backup.ts`); none without backups. */
  startBefore?: readonly string[];
}

/** How the members run together: see the module's comment. */
export function clusterHighAvailability(description: ClusterDescription): HighAvailabilitySpec {
  return {
    manager: 'Elasticsearch cluster',
    args: ['sh', '-c', memberStartScript(description.paths, description.startBefore)],
    env: clusterSettings(description),
    memberEnv: {
      // The pod's name: what cluster.initial_master_nodes lists and the logs show.
      'node.name': { field: 'metadata.name' },
      [TRANSPORT_ADDRESS_VARIABLE]: { address: TRANSPORT_PORT },
      [ZONE_VARIABLE]: { field: "metadata.labels['topology.kubernetes.io/zone']" },
    },
    configFiles: [],
    ports: [{ name: 'transport', containerPort: TRANSPORT_PORT }],
    healthCheck: { ...description.healthCheck, command: joinedClusterCheck(description.request) },
    // A node is ready once a quorum of master-eligible nodes has elected a master: started one by
    // one, the first would wait for the others forever (at the first formation and after a full
    // restart alike).
    startInParallel: true,
  };
}
