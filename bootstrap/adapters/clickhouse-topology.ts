/**
 * What the ClickHouse adapter needs to know about the server it reached, and the statements that
 * differ between a single server and a replicated stack (databases/clickhouse/README.md,
 * "Replicas"). Pure: the adapter runs the queries, this module reads their answers and writes
 * the SQL, so the tests check both without a cluster.
 *
 * A server is a member of a replicated stack when its configuration lists the cluster
 * {@link CLUSTER} (config.d/replication.xml): `system.clusters` then names every member and marks
 * the one that answered (`is_local`). Docker and chdb list no such cluster: a single server,
 * whose bootstrap is exactly what it was before replicas existed.
 */
import { CLUSTER, replicatedDatabasePath } from '../../databases/clickhouse/replication.ts';
import { BootstrapError } from '../errors.ts';
import { replicatedStatement } from './clickhouse-replicated.ts';

export { CLUSTER } from '../../databases/clickhouse/replication.ts';

/** How the server the adapter reached runs. */
export type ClickHouseTopology =
  | { kind: 'single' }
  | {
      kind: 'replicated';
      /** Every member's stable host name, in replica order (`remote_servers`). */
      members: string[];
      /** The member that answered. */
      member: string;
    };

/** `system.clusters` rows of {@link CLUSTER}: the query the adapter runs, and its answer. */
export const TOPOLOGY_QUERY = `SELECT host_name, is_local FROM system.clusters WHERE cluster = '${CLUSTER}' ORDER BY shard_num, replica_num`;

export interface ClusterRow {
  host_name: string;
  is_local: number | string | boolean;
}

/** The topology from {@link TOPOLOGY_QUERY}'s rows; a cluster in which the server does not find itself is an error. */
export function topologyOf(rows: readonly ClusterRow[]): ClickHouseTopology {
  if (rows.length === 0) return { kind: 'single' };
  const members = rows.map((row) => row.host_name);
  const local = rows.filter((row) => Number(row.is_local) === 1 || row.is_local === true);
  if (local.length !== 1) {
    throw new BootstrapError(
      'clickhouse',
      `the server lists the cluster ${CLUSTER} (${members.join(', ')}) but finds ${local.length === 0 ? 'none' : `${local.length}`} of its members to be itself: each member's name must resolve to its own address (its headless Service's DNS name, config.d/replication.xml)`,
    );
  }
  return { kind: 'replicated', members, member: local[0]!.host_name };
}

/** `url` with its host replaced by a member's stable name (port, credentials and path kept): the run then talks to that member only. */
export function memberUrl(url: string, host: string): string {
  const parsed = new URL(url);
  parsed.hostname = host;
  return parsed.toString().replace(/\/$/, url.endsWith('/') ? '/' : '');
}

/**
 * Settings of every schema statement on a replicated stack:
 * - a table that would keep unreplicated data on one member's disk (a MergeTree the replicated
 *   form missed, a Log) is refused by the server instead of created on one member only;
 * - a statement waits for the active members to run it too, and reports their errors; an inactive
 *   member runs it from the database's DDL log when it is back.
 * `throw_only_active` is newer than the client's type for the setting.
 */
export const REPLICATED_DDL_SETTINGS = {
  database_replicated_allow_only_replicated_engine: 1,
  distributed_ddl_output_mode: 'throw_only_active',
} as const;

/** The statement to send for an asset's statement: as written on a single server, in its replicated form on a replicated stack. */
export function statementFor(topology: ClickHouseTopology, text: string): string {
  return topology.kind === 'replicated' ? replicatedStatement(text, { cluster: CLUSTER, databasePath: replicatedDatabasePath }) : text;
}

/** The CREATE DATABASE of `database` as a Replicated database on every member (its replicated form). */
export function createReplicatedDatabase(database: string): string {
  return statementFor({ kind: 'replicated', members: [], member: '' }, `CREATE DATABASE IF NOT EXISTS ${database}`);
}

/**
 * The bookkeeping tables. On a replicated stack they are replicated like the schema (the ledger
 * a later run reads may have been written through another member), and the lock's rows keep the
 * number Keeper gave the insert of each (`_block_number`, persisted through merges by
 * `enable_block_number_column`): the claims' order, the same on every member whatever its clock.
 */
export function bookkeepingTables(database: string, topology: ClickHouseTopology): { ledger: string; lock: string } {
  const ledger = `CREATE TABLE IF NOT EXISTS ${database}.ledger (
          kind LowCardinality(String), version UInt32, name String, path String, checksum String,
          statement UInt32, statement_checksum String,
          applied_at DateTime64(3, 'UTC') DEFAULT now64(3), duration_ms UInt32, applied_by String
        ) ENGINE = MergeTree ORDER BY (kind, version, name, statement, applied_at)
        COMMENT 'Assets applied by the Allixios bootstrap; statement 0 = whole asset (bootstrap/README.md)'`;
  const lock = `CREATE TABLE IF NOT EXISTS ${database}.lock (
          holder String, acquired_at DateTime64(3, 'UTC'), expires_at DateTime64(3, 'UTC'),
          written_at DateTime64(3, 'UTC') DEFAULT now64(3)
        ) ENGINE = MergeTree ORDER BY (holder, written_at)
        TTL toDateTime(written_at) + INTERVAL 1 DAY`;
  if (topology.kind === 'single') return { ledger, lock };
  return { ledger: statementFor(topology, ledger), lock: statementFor(topology, `${lock}\n        SETTINGS enable_block_number_column = 1`) };
}

/**
 * Live leases: the newest row of each holder, if it has not expired; oldest claim first. A claim's
 * age is its first row's: the server's time of it on a single server, Keeper's number of its
 * insert on a replicated stack (two members' clocks may disagree, Keeper's order does not). The
 * newest row of a holder is by its own time: one run writes its rows through one member.
 */
export function liveLeasesQuery(table: string, order: 'time' | 'block'): string {
  const claim = order === 'time' ? 'min(acquired_at)' : 'min(_block_number)';
  return `SELECT holder, ${claim} AS claim FROM ${table} GROUP BY holder
              HAVING argMax(expires_at, written_at) > now64(3) ORDER BY claim, holder`;
}
