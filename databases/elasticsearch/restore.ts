/**
 * Elasticsearch's restore (issue 17), the library function `npm run restore -- --engine
 * elasticsearch` calls: one snapshot of the SLM policy (the latest successful one, or the one
 * named with `--backup`) restored beside the live data, every index and data stream renamed
 * `restored-<UTC time>-<name>`, then checked.
 *
 * Plan first, then execute only when told: {@link restoreElasticsearch} always returns the steps it
 * would take (it reads the snapshot and the names it would create, it writes nothing); with
 * `execute: true` it restores. A name the restore would create that exists already is refused, by
 * name, before anything is written. Nothing of the cluster's global state comes back (templates,
 * users, settings: the bootstrap's and the stack's), and no alias: the restored `articles_v1`
 * must not join the live `articles` alias, which would then point at two indices.
 *
 * Not drilled here: no Elasticsearch runs on this machine (README.md, "Backups and restore").
 */
import type { estypes } from '@elastic/elasticsearch';
import type { EngineRestore, RestorePlan, RestoreRequest } from '../backup.ts';
import { REPOSITORY, SLM_POLICY } from './backup.ts';

/** The part of `@elastic/elasticsearch`'s Client the restore uses, with its own request and response types. */
export interface ElasticsearchRestoreClient {
  snapshot: {
    get(request: estypes.SnapshotGetRequest): Promise<estypes.SnapshotGetResponse>;
    restore(request: estypes.SnapshotRestoreRequest): Promise<estypes.SnapshotRestoreResponse>;
  };
  indices: {
    exists(request: estypes.IndicesExistsRequest): Promise<boolean>;
    delete(request: estypes.IndicesDeleteRequest): Promise<estypes.IndicesDeleteResponse>;
    deleteDataStream(request: estypes.IndicesDeleteDataStreamRequest): Promise<estypes.IndicesDeleteDataStreamResponse>;
  };
  count(request: estypes.CountRequest): Promise<estypes.CountResponse>;
  close(): Promise<void>;
}

export interface ElasticsearchRestoreOptions {
  /** The cluster, as an admin URL with its password (`elastic`); or {@link client}. */
  url?: string;
  client?: ElasticsearchRestoreClient;
  /** A snapshot's name (`--backup`); default: the latest successful snapshot of the policy. */
  backup?: string;
  repository?: string;
  policy?: string;
  /** The clock of the restored names' prefix. */
  now?: Date;
  /** The restored names' prefix, without its trailing `-` (`npm run restore --target`); default `restored-<UTC yyyymmdd-hhmmss>`. */
  prefix?: string;
  /** Names the restore would create exist, and the operator named the prefix twice: they are deleted first. */
  replaceExisting?: boolean;
  /** Restore; without it only the plan is returned. */
  execute?: boolean;
}

export interface RestoredName {
  kind: 'index' | 'data stream';
  source: string;
  target: string;
}

export interface ElasticsearchRestorePlan {
  repository: string;
  snapshot: string;
  /** When the snapshot was taken (ISO 8601). */
  takenAt?: string;
  /** `restored-<UTC yyyymmdd-hhmmss>-`. */
  prefix: string;
  names: RestoredName[];
  /** The restore request as it will be sent. */
  request: estypes.SnapshotRestoreRequest;
  steps: string[];
}

export interface ElasticsearchRestoreResult {
  plan: ElasticsearchRestorePlan;
  executed: boolean;
  figures?: {
    shards: { total: number; successful: number; failed: number };
    /** By restored name: its documents, and the live source's now (what was written since, or lost), when it still exists. */
    documents: Record<string, { restored: number; live?: number }>;
    seconds: number;
  };
}

/**
 * A prefix given by the operator: what an index name may start with, and nothing the snapshots
 * take (`articles_v*`, `search-analytics-*`: a restored copy would be snapshotted, and the bootstrap
 * would read it as a version of the live index).
 */
export function checkPrefix(prefix: string): void {
  if (!/^[a-z0-9][a-z0-9_-]{0,100}$/.test(prefix)) {
    throw new Error(
      `elasticsearch restore: target: expected the restored names' prefix, lower-case letters, digits, "_" and "-" (index names' rules), got ${JSON.stringify(prefix)}`,
    );
  }
  if (prefix.startsWith('articles') || prefix.startsWith('search-analytics')) {
    throw new Error(
      `elasticsearch restore: target: ${prefix} would make restored names the platform's own patterns (articles_v*, search-analytics-*) match; choose another prefix, e.g. restored-<date>`,
    );
  }
}

/** `restored-20260102-013000-` for 2026-01-02T01:30:00Z: lower case, as index names must be. */
export function restorePrefix(now: Date): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `restored-${stamp}-`;
}

/** The snapshot to restore: the named one, or the newest successful one the policy took. */
async function findSnapshot(client: ElasticsearchRestoreClient, repository: string, policy: string, backup: string | undefined): Promise<estypes.SnapshotSnapshotInfo> {
  if (backup !== undefined) {
    const found = await client.snapshot.get({ repository, snapshot: backup, index_details: true, ignore_unavailable: true });
    const snapshot = found.snapshots?.[0];
    if (!snapshot) throw new Error(`elasticsearch restore: no snapshot ${backup} in the repository ${repository}`);
    if (snapshot.state !== 'SUCCESS') {
      throw new Error(`elasticsearch restore: the snapshot ${backup} is ${snapshot.state ?? 'in an unknown state'}, not SUCCESS: some of its shards are missing; name another one`);
    }
    return snapshot;
  }
  const found = await client.snapshot.get({ repository, snapshot: '*', slm_policy_filter: policy, sort: 'start_time', order: 'desc', size: 50, index_details: true });
  const snapshot = (found.snapshots ?? []).find((candidate) => candidate.state === 'SUCCESS');
  if (!snapshot)
    throw new Error(`elasticsearch restore: the repository ${repository} has no successful snapshot of the policy ${policy} (among its latest ${found.snapshots?.length ?? 0})`);
  return snapshot;
}

/**
 * What the restore creates: each index renamed (a data stream's backing indices, `.ds-<stream>-…`,
 * follow their stream's new name and are not listed), each data stream renamed.
 */
export function restoredNames(snapshot: Pick<estypes.SnapshotSnapshotInfo, 'indices' | 'data_streams'>, prefix: string): RestoredName[] {
  const indices = (snapshot.indices ?? []).filter((index) => !index.startsWith('.ds-')).sort();
  const streams = [...(snapshot.data_streams ?? [])].sort();
  return [
    ...indices.map((source): RestoredName => ({ kind: 'index', source, target: `${prefix}${source}` })),
    ...streams.map((source): RestoredName => ({ kind: 'data stream', source, target: `${prefix}${source}` })),
  ];
}

/**
 * The restore request: the snapshot's indices and data streams by name, renamed with the prefix
 * (`(.+)` → `<prefix>$1`, Elastic's own example), no global state, no aliases, and the call waits
 * until every primary shard is restored.
 */
export function restoreRequest(repository: string, snapshot: string, names: readonly RestoredName[], prefix: string): estypes.SnapshotRestoreRequest {
  return {
    repository,
    snapshot,
    indices: names.map((name) => name.source),
    rename_pattern: '(.+)',
    rename_replacement: `${prefix}$1`,
    include_global_state: false,
    include_aliases: false,
    partial: false,
    wait_for_completion: true,
  };
}

async function clientFor(url: string): Promise<ElasticsearchRestoreClient> {
  const { Client } = await import('@elastic/elasticsearch');
  const { elasticsearchClientOptions } = await import('../../bootstrap/adapters/elasticsearch-adapter.ts');
  // A restore of a large snapshot takes long: the request waits for it (wait_for_completion).
  return new Client(elasticsearchClientOptions(url, 6 * 60 * 60_000));
}

/** Plans the restore of one snapshot beside the live data, and restores and checks it with `execute: true`. */
export async function restoreElasticsearch(options: ElasticsearchRestoreOptions): Promise<ElasticsearchRestoreResult> {
  const repository = options.repository ?? REPOSITORY;
  const policy = options.policy ?? SLM_POLICY;
  if (!options.client && !options.url) throw new Error('elasticsearch restore: expected the cluster as a URL (url) or a client, got neither');
  const client = options.client ?? (await clientFor(options.url!));
  try {
    const snapshot = await findSnapshot(client, repository, policy, options.backup);
    if (options.prefix !== undefined) checkPrefix(options.prefix);
    const prefix = options.prefix !== undefined ? `${options.prefix}-` : restorePrefix(options.now ?? new Date());
    const names = restoredNames(snapshot, prefix);
    if (names.length === 0) throw new Error(`elasticsearch restore: the snapshot ${snapshot.snapshot} holds no index or data stream to restore`);
    const taken: string[] = [];
    for (const name of names) if (await client.indices.exists({ index: name.target, expand_wildcards: 'all', allow_no_indices: true })) taken.push(name.target);
    if (taken.length > 0 && !options.replaceExisting) {
      throw new Error(
        `elasticsearch restore: ${taken.join(', ')} already exist${taken.length === 1 ? 's' : ''}: a restore creates new indices only; delete ${taken.length === 1 ? 'it' : 'them'} or restore at another time`,
      );
    }
    const request = restoreRequest(repository, snapshot.snapshot, names, prefix);
    const shardTotal = snapshot.shards?.total;
    const plan: ElasticsearchRestorePlan = {
      repository,
      snapshot: snapshot.snapshot,
      ...(snapshot.start_time !== undefined ? { takenAt: String(snapshot.start_time) } : {}),
      prefix,
      names,
      request,
      steps: [
        options.backup === undefined
          ? `take the latest successful snapshot of the policy ${policy} in ${repository}: ${snapshot.snapshot}${snapshot.start_time !== undefined ? `, taken ${String(snapshot.start_time)}` : ''}`
          : `take the snapshot ${snapshot.snapshot} of ${repository}`,
        taken.length > 0
          ? `delete ${taken.join(', ')} first: ${taken.length === 1 ? 'it exists' : 'they exist'}, and the operator named the target twice`
          : `check that none of ${names.map((name) => name.target).join(', ')} exists: none does`,
        `restore ${names.map((name) => `${name.kind} ${name.source} as ${name.target}`).join(', ')}; no global state, no alias (the live aliases stay on the live indices); wait for every primary shard`,
        `check that the restore's shards are the snapshot's${shardTotal !== undefined ? ` (${shardTotal})` : ''}, none failed, and count the documents of each restored name beside its live source`,
      ],
    };
    if (!options.execute) return { plan, executed: false };
    for (const name of names.filter((candidate) => taken.includes(candidate.target))) {
      // By its full name: the cluster refuses wildcards in deletions (action.destructive_requires_name).
      if (name.kind === 'data stream') await client.indices.deleteDataStream({ name: name.target });
      else await client.indices.delete({ index: name.target });
    }
    return { plan, executed: true, figures: await execute(client, plan, snapshot) };
  } finally {
    // A client made here is closed here; one given stays the caller's.
    if (!options.client) await client.close();
  }
}

async function execute(
  client: ElasticsearchRestoreClient,
  plan: ElasticsearchRestorePlan,
  snapshot: estypes.SnapshotSnapshotInfo,
): Promise<NonNullable<ElasticsearchRestoreResult['figures']>> {
  const started = Date.now();
  const response = await client.snapshot.restore(plan.request);
  const shards = response.snapshot?.shards;
  if (!shards) throw new Error(`elasticsearch restore: the cluster accepted the restore of ${plan.snapshot} but reported no shards: it did not wait for completion`);
  const expected = snapshot.shards?.successful;
  if (shards.failed > 0 || shards.successful !== shards.total || (expected !== undefined && shards.total !== expected)) {
    throw new Error(
      `elasticsearch restore: ${plan.snapshot} restored ${shards.successful} of ${shards.total} shards (${shards.failed} failed)${expected !== undefined ? `; the snapshot holds ${expected}` : ''}: the restored names (${plan.prefix}*) are incomplete`,
    );
  }
  const documents: Record<string, { restored: number; live?: number }> = {};
  for (const name of plan.names) {
    const restored = (await client.count({ index: name.target })).count;
    const live = (await client.indices.exists({ index: name.source })) ? (await client.count({ index: name.source })).count : undefined;
    documents[name.target] = { restored, ...(live !== undefined ? { live } : {}) };
  }
  return { shards: { total: shards.total, successful: shards.successful, failed: shards.failed }, documents, seconds: (Date.now() - started) / 1000 };
}

/** The engine's restore as `npm run restore` calls it (databases/backup.ts: EngineRestore). */
export function elasticsearchEngineRestore(tools: { client?: ElasticsearchRestoreClient } = {}): EngineRestore {
  return {
    async plan(request: RestoreRequest): Promise<RestorePlan> {
      if (request.source !== undefined) {
        throw new Error(`elasticsearch restore: --from: Elasticsearch restores from its snapshot repository (${REPOSITORY}, registered by the bootstrap), not from a local copy`);
      }
      if (request.to) throw new Error('elasticsearch restore: --to: snapshots are taken on a schedule, not continuously; name one with --backup <snapshot>');
      if (!tools.client && !request.url) throw new Error('elasticsearch restore: ELASTICSEARCH_URL: expected the admin URL (elastic) of the cluster, got none');
      const options: ElasticsearchRestoreOptions = {
        ...(tools.client ? { client: tools.client } : { url: request.url! }),
        ...(request.backup !== undefined ? { backup: request.backup } : {}),
        prefix: request.target,
        replaceExisting: request.replaceExisting,
      };
      const { plan } = await restoreElasticsearch(options);
      return {
        steps: plan.steps,
        execute: async (log) => {
          log(`restoring ${plan.snapshot} as ${plan.prefix}*`);
          // The snapshot the plan showed, not a newer one taken meanwhile.
          const { figures } = await restoreElasticsearch({ ...options, backup: plan.snapshot, execute: true });
          const result: Record<string, string | number> = {
            snapshot: plan.snapshot,
            shards: figures!.shards.successful,
            'shards failed': figures!.shards.failed,
            seconds: figures!.seconds,
          };
          for (const [name, documents] of Object.entries(figures!.documents)) {
            result[`${name} documents`] = documents.restored;
            if (documents.live !== undefined) result[`${name} live documents`] = documents.live;
          }
          return result;
        },
      };
    },
  };
}
