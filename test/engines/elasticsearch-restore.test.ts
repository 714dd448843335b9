/**
 * Elasticsearch's restore (databases/elasticsearch/restore.ts) against a stand-in of the client,
 * typed with the client's own request and response types (`ElasticsearchRestoreClient`, which the
 * real Client satisfies: restore.ts builds one as such). No Elasticsearch runs here.
 */
import type { estypes } from '@elastic/elasticsearch';
import { describe, expect, it } from 'vitest';
import { elasticsearch } from '../../databases/elasticsearch/index.ts';
import { elasticsearchEngineRestore, restoreElasticsearch, restorePrefix, restoredNames, type ElasticsearchRestoreClient } from '../../databases/elasticsearch/restore.ts';

const NOW = new Date('2026-01-02T01:30:00Z');
const PREFIX = 'restored-20260102-013000-';

function snapshotInfo(name: string, state: string, start: string, shards = 3): estypes.SnapshotSnapshotInfo {
  return {
    snapshot: name,
    uuid: `uuid-${name}`,
    state,
    start_time: start,
    indices: ['articles_v1', '.ds-search-analytics-default-2026.01.01-000001'],
    data_streams: ['search-analytics-default'],
    shards: { total: shards, successful: state === 'SUCCESS' ? shards : shards - 1, failed: state === 'SUCCESS' ? 0 : 1 },
  };
}

interface FakeOptions {
  snapshots?: estypes.SnapshotSnapshotInfo[];
  existing?: string[];
  restored?: estypes.ShardStatistics;
  counts?: Record<string, number>;
}

/** A cluster as the client would see it; records the requests. */
function fakeClient(options: FakeOptions = {}) {
  const snapshots = options.snapshots ?? [
    snapshotInfo('allixios-2026.01.02-b', 'PARTIAL', '2026-01-02T02:00:00Z'),
    snapshotInfo('allixios-2026.01.01-a', 'SUCCESS', '2026-01-01T02:00:00Z'),
  ];
  const requests: Array<{ api: string; request: unknown }> = [];
  const existing = new Set(options.existing ?? ['articles_v1', 'search-analytics-default']);
  const client: ElasticsearchRestoreClient & { requests: typeof requests } = {
    requests,
    snapshot: {
      get: async (request) => {
        requests.push({ api: 'snapshot.get', request });
        const named = request.snapshot === '*' ? snapshots : snapshots.filter((snapshot) => snapshot.snapshot === request.snapshot);
        return { total: named.length, remaining: 0, snapshots: named };
      },
      restore: async (request) => {
        requests.push({ api: 'snapshot.restore', request });
        for (const name of request.indices as string[]) existing.add(`${PREFIX}${name}`);
        return { snapshot: { snapshot: request.snapshot, indices: [], shards: options.restored ?? { total: 3, successful: 3, failed: 0 } } };
      },
    },
    indices: {
      exists: async (request) => {
        requests.push({ api: 'indices.exists', request });
        return existing.has(request.index as string);
      },
      delete: async (request) => {
        requests.push({ api: 'indices.delete', request });
        existing.delete(request.index as string);
        return { acknowledged: true };
      },
      deleteDataStream: async (request) => {
        requests.push({ api: 'indices.deleteDataStream', request });
        existing.delete(request.name as string);
        return { acknowledged: true };
      },
    },
    count: async (request) => {
      requests.push({ api: 'count', request });
      return { count: options.counts?.[request.index as string] ?? 0, _shards: { total: 1, successful: 1, failed: 0 } };
    },
    close: async () => undefined,
  };
  return client;
}

describe('planning a restore', () => {
  it('takes the newest successful snapshot of the policy, passing over a partial one, and writes nothing', async () => {
    const client = fakeClient();
    const { plan, executed } = await restoreElasticsearch({ client, now: NOW });
    expect(executed).toBe(false);
    expect(plan.snapshot).toBe('allixios-2026.01.01-a');
    expect(client.requests[0]).toEqual({
      api: 'snapshot.get',
      request: { repository: 'allixios-backups', snapshot: '*', slm_policy_filter: 'allixios-snapshots', sort: 'start_time', order: 'desc', size: 50, index_details: true },
    });
    expect(client.requests.map((request) => request.api)).not.toContain('snapshot.restore');
  });

  it('renames every index and data stream with the time’s prefix, backing indices following their stream', async () => {
    const { plan } = await restoreElasticsearch({ client: fakeClient(), now: NOW });
    expect(plan.names).toEqual([
      { kind: 'index', source: 'articles_v1', target: `${PREFIX}articles_v1` },
      { kind: 'data stream', source: 'search-analytics-default', target: `${PREFIX}search-analytics-default` },
    ]);
  });

  it('restores without the global state and without aliases (a restored articles_v1 must not join the live articles alias), waiting for completion', async () => {
    const { plan } = await restoreElasticsearch({ client: fakeClient(), now: NOW });
    expect(plan.request).toEqual({
      repository: 'allixios-backups',
      snapshot: 'allixios-2026.01.01-a',
      indices: ['articles_v1', 'search-analytics-default'],
      rename_pattern: '(.+)',
      rename_replacement: `${PREFIX}$1`,
      include_global_state: false,
      include_aliases: false,
      partial: false,
      wait_for_completion: true,
    });
    // The replacement makes each name what the plan says ($1 means the same to JavaScript as to Java)
    expect('articles_v1'.replace(new RegExp(`^${plan.request.rename_pattern}$`), plan.request.rename_replacement!)).toBe(`${PREFIX}articles_v1`);
  });

  it('refuses when a name it would create exists, naming it, before restoring anything', async () => {
    const client = fakeClient({ existing: ['articles_v1', `${PREFIX}articles_v1`] });
    await expect(restoreElasticsearch({ client, now: NOW, execute: true })).rejects.toThrow(
      `elasticsearch restore: ${PREFIX}articles_v1 already exists: a restore creates new indices only; delete it or restore at another time`,
    );
    expect(client.requests.map((request) => request.api)).not.toContain('snapshot.restore');
  });

  it('takes a named snapshot (--backup), and refuses one that is not a complete success or does not exist', async () => {
    const client = fakeClient();
    expect((await restoreElasticsearch({ client, backup: 'allixios-2026.01.01-a', now: NOW })).plan.steps[0]).toBe('take the snapshot allixios-2026.01.01-a of allixios-backups');
    await expect(restoreElasticsearch({ client, backup: 'allixios-2026.01.02-b', now: NOW })).rejects.toThrow(
      'elasticsearch restore: the snapshot allixios-2026.01.02-b is PARTIAL, not SUCCESS: some of its shards are missing; name another one',
    );
    await expect(restoreElasticsearch({ client, backup: 'nope', now: NOW })).rejects.toThrow('elasticsearch restore: no snapshot nope in the repository allixios-backups');
  });

  it('refuses a repository without a successful snapshot of the policy, and a call without a cluster', async () => {
    await expect(restoreElasticsearch({ client: fakeClient({ snapshots: [snapshotInfo('x', 'FAILED', '2026-01-01T00:00:00Z')] }), now: NOW })).rejects.toThrow(
      'elasticsearch restore: the repository allixios-backups has no successful snapshot of the policy allixios-snapshots (among its latest 1)',
    );
    await expect(restoreElasticsearch({})).rejects.toThrow('elasticsearch restore: expected the cluster as a URL (url) or a client, got neither');
  });

  it('names the prefix after the time, in lower case', () => {
    expect(restorePrefix(NOW)).toBe(PREFIX);
    expect(restoredNames({ indices: ['a'], data_streams: [] }, 'p-')).toEqual([{ kind: 'index', source: 'a', target: 'p-a' }]);
  });
});

describe('restoring', () => {
  it('restores, checks the shards against the snapshot’s and counts each restored name beside its live source', async () => {
    const client = fakeClient({ counts: { [`${PREFIX}articles_v1`]: 120, articles_v1: 125, [`${PREFIX}search-analytics-default`]: 900, 'search-analytics-default': 950 } });
    const result = await restoreElasticsearch({ client, now: NOW, execute: true });
    expect(result.executed).toBe(true);
    expect(result.figures).toMatchObject({
      shards: { total: 3, successful: 3, failed: 0 },
      documents: { [`${PREFIX}articles_v1`]: { restored: 120, live: 125 }, [`${PREFIX}search-analytics-default`]: { restored: 900, live: 950 } },
    });
  });

  it('fails when a shard failed or fewer shards came back than the snapshot holds', async () => {
    await expect(restoreElasticsearch({ client: fakeClient({ restored: { total: 3, successful: 2, failed: 1 } }), now: NOW, execute: true })).rejects.toThrow(
      `elasticsearch restore: allixios-2026.01.01-a restored 2 of 3 shards (1 failed); the snapshot holds 3: the restored names (${PREFIX}*) are incomplete`,
    );
    await expect(restoreElasticsearch({ client: fakeClient({ restored: { total: 2, successful: 2, failed: 0 } }), now: NOW, execute: true })).rejects.toThrow(
      /restored 2 of 2 shards \(0 failed\); the snapshot holds 3/,
    );
  });
});

describe('as npm run restore calls it', () => {
  const request = { target: 'restored-drill', replaceExisting: false, url: 'https://elastic:pw@es:9200' };

  it('is the engine module’s restore, and prints the plan’s steps with the target as the prefix', async () => {
    expect(typeof (await elasticsearch.restore!()).plan).toBe('function');
    const client = fakeClient();
    const plan = await elasticsearchEngineRestore({ client }).plan(request);
    expect(plan.steps[1]).toBe('check that none of restored-drill-articles_v1, restored-drill-search-analytics-default exists: none does');
    // Executing restores the snapshot the plan showed, and returns the figures
    const figures = await plan.execute(() => undefined);
    expect(figures).toMatchObject({ snapshot: 'allixios-2026.01.01-a', shards: 3, 'shards failed': 0, 'restored-drill-articles_v1 documents': 0 });
    const restore = client.requests.find((entry) => entry.api === 'snapshot.restore')!.request as estypes.SnapshotRestoreRequest;
    expect([restore.snapshot, restore.rename_replacement]).toEqual(['allixios-2026.01.01-a', 'restored-drill-$1']);
  });

  it('deletes restored names that exist only when the target was named twice, by their full names', async () => {
    const existing = ['articles_v1', 'restored-drill-articles_v1', 'restored-drill-search-analytics-default'];
    await expect(elasticsearchEngineRestore({ client: fakeClient({ existing }) }).plan(request)).rejects.toThrow(
      /restored-drill-articles_v1, restored-drill-search-analytics-default already exist/,
    );
    const client = fakeClient({ existing });
    const plan = await elasticsearchEngineRestore({ client }).plan({ ...request, replaceExisting: true });
    expect(plan.steps[1]).toBe('delete restored-drill-articles_v1, restored-drill-search-analytics-default first: they exist, and the operator named the target twice');
    await plan.execute(() => undefined);
    expect(client.requests.filter((entry) => entry.api.startsWith('indices.delete'))).toEqual([
      { api: 'indices.delete', request: { index: 'restored-drill-articles_v1' } },
      { api: 'indices.deleteDataStream', request: { name: 'restored-drill-search-analytics-default' } },
    ]);
  });

  it('refuses a local copy, a point in time, a prefix that is not an index name or that the platform’s patterns would match', async () => {
    const restore = elasticsearchEngineRestore({ client: fakeClient() });
    await expect(restore.plan({ ...request, source: '/tmp/x' })).rejects.toThrow(/--from: Elasticsearch restores from its snapshot repository \(allixios-backups/);
    await expect(restore.plan({ ...request, to: new Date() })).rejects.toThrow(/--to: snapshots are taken on a schedule/);
    await expect(restore.plan({ ...request, target: 'Restored' })).rejects.toThrow(/target: expected the restored names' prefix, lower-case letters.*got "Restored"/);
    await expect(restore.plan({ ...request, target: 'articles-old' })).rejects.toThrow(/target: articles-old would make restored names the platform's own patterns/);
    await expect(elasticsearchEngineRestore().plan({ target: 'x', replaceExisting: false })).rejects.toThrow(
      'elasticsearch restore: ELASTICSEARCH_URL: expected the admin URL (elastic) of the cluster, got none',
    );
  });
});
