/**
 * The runner with the Elasticsearch engine. No Elasticsearch server can run where the tests
 * usually run (ENGINES.md): the tests that need one read ELASTICSEARCH_URL (the bootstrap's
 * `elastic` connection, `http://elastic:<password>@host:9200`) and are skipped without it.
 *
 * Those tests run the engine under throwaway names (alias, index template, ledger and lock
 * indices under a random prefix) and delete everything they created, so any cluster will do;
 * except the one test of the real definitions, which uses the platform's fixed names and deletes
 * them first: run it against a throwaway cluster only (its title says so).
 *
 * What needs no cluster runs everywhere: the readiness timeout and an authentication failure.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client, type estypes } from '@elastic/elasticsearch';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { nextIndexName } from '../../databases/elasticsearch/definitions.ts';
import { ElasticsearchAdapter, LEDGER_INDEX, LOCK_INDEX } from '../../bootstrap/adapters/elasticsearch-adapter.ts';
import { elasticsearchDesired, elasticsearchEngine, watchedNames } from '../../bootstrap/adapters/elasticsearch.ts';
import type { ElasticsearchDesired, ElasticsearchObserved, ElasticsearchPayload, LedgerRecord } from '../../bootstrap/adapters/elasticsearch-plan.ts';
import { runBootstrap, type BootstrapOptions } from '../../bootstrap/runner.ts';
import type { BootstrapEngine } from '../../bootstrap/contract.ts';
import { elasticsearch } from '../../databases/elasticsearch/index.ts';
import { describeConformance } from './conformance/suite.ts';

const ELASTICSEARCH_URL = process.env.ELASTICSEARCH_URL;

function bootstrap(engine: BootstrapEngine<ElasticsearchDesired, ElasticsearchObserved, ElasticsearchPayload>, extra: Partial<BootstrapOptions> = {}) {
  return runBootstrap({
    mode: 'apply',
    env: { ELASTICSEARCH_URL },
    registry: [engine],
    readyTimeoutMs: 30_000,
    lockTimeoutMs: 10_000,
    lockLeaseMs: 3000,
    ...extra,
  });
}

describe('reaching the cluster (no Elasticsearch needed)', () => {
  let stub: Server | undefined;
  afterEach(async () => {
    await new Promise((resolve) => (stub ? stub.close(resolve) : resolve(undefined)));
    stub = undefined;
  });

  it('a 401 is waited on within the ready timeout (the security index may still recover), then named with both causes', async () => {
    // Answers like Elasticsearch with security on answers a wrong password (or a login while its
    // security index is still being recovered: the same 401).
    stub = createServer((_request, response) => {
      response.writeHead(401, { 'content-type': 'application/json', 'x-elastic-product': 'Elasticsearch', 'www-authenticate': 'Basic realm="security"' });
      response.end(JSON.stringify({ error: { type: 'security_exception', reason: 'unable to authenticate user [elastic] for REST request [/_cluster/health]' }, status: 401 }));
    });
    await new Promise<void>((resolve) => stub!.listen(0, '127.0.0.1', resolve));
    const { port } = stub.address() as AddressInfo;
    const started = Date.now();
    const report = await bootstrap(elasticsearchEngine, { env: { ELASTICSEARCH_URL: `http://elastic:wrong@127.0.0.1:${port}` }, readyTimeoutMs: 1_500 });

    expect(report.ok).toBe(false);
    expect(report.engines[0]!.error).toMatch(
      new RegExp(
        `^elasticsearch: cannot connect to 127\\.0\\.0\\.1:${port} after 1\\.\\d s: authentication failed as elastic \\(a wrong password, or the security index still recovering\\): security_exception: unable to authenticate user`,
      ),
    );
    expect(report.engines[0]!.error).not.toContain('wrong@');
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_400);
  });
});

// ---------------------------------------------------------------------------------------------
// On a real cluster

const PREFIX = `bootstrap-test-${randomBytes(4).toString('hex')}`;
const ALIAS = `${PREFIX}-articles`;
const TEMPLATE = `${PREFIX}-analytics`;
const LEDGER = `${PREFIX}-ledger`;
const LOCK = `${PREFIX}-lock`;

type Edit = (desired: ElasticsearchDesired) => ElasticsearchDesired;

/** The real definitions under throwaway names, optionally edited: a new field, a new version. */
function throwawayEngine(edit: Edit = (desired) => desired): BootstrapEngine<ElasticsearchDesired, ElasticsearchObserved, ElasticsearchPayload> {
  const desired = (): ElasticsearchDesired => {
    const base = elasticsearchDesired('ephemeral');
    const articles = base.indices[0]!;
    const template = base.templates[0]!;
    return edit({
      ...base,
      indices: [{ ...articles, alias: ALIAS, index: nextIndexName(ALIAS, articles.version) }],
      templates: [{ ...template, request: { ...template.request, name: TEMPLATE, index_patterns: [`${TEMPLATE}-*`] } }],
    });
  };
  return {
    ...elasticsearchEngine,
    desired,
    createAdapter: async (url, options) => new ElasticsearchAdapter(url!, { ...options, watch: watchedNames(desired()), ledgerIndex: LEDGER, lockIndex: LOCK }),
  };
}

const withVersion =
  (version: number): Edit =>
  (desired) => ({ ...desired, indices: [{ ...desired.indices[0]!, version, index: nextIndexName(ALIAS, version) }] });

const withSubtitle: Edit = (desired) => {
  const articles = desired.indices[0]!;
  return {
    ...desired,
    indices: [{ ...articles, mappings: { ...articles.mappings, properties: { ...articles.mappings.properties, subtitle: { type: 'text', analyzer: 'english_text' } } } }],
  };
};

/** Deletes indices by exact name (wildcard deletes are refused by default) and a template. */
async function deleteIndices(client: Client, pattern: string, template: string): Promise<void> {
  const found = await client.indices.get({ index: pattern, expand_wildcards: 'all', allow_no_indices: true, ignore_unavailable: true });
  for (const index of Object.keys(found)) await client.indices.delete({ index, ignore_unavailable: true });
  await client.indices.deleteIndexTemplate({ name: template }).catch(() => undefined);
}

const deleteThrowaway = (client: Client) => deleteIndices(client, `${PREFIX}-*`, TEMPLATE);

describeConformance({
  module: elasticsearch,
  engine: throwawayEngine(),
  ...(ELASTICSEARCH_URL ? {} : { unavailable: 'the elastic user; no Elasticsearch runs here' }),
  async fresh() {
    const client = new Client({ node: ELASTICSEARCH_URL! });
    await deleteThrowaway(client);
    return {
      options: { env: { ELASTICSEARCH_URL } },
      async stop() {
        await deleteThrowaway(client);
        await client.close();
      },
    };
  },
});

describe('on a real Elasticsearch cluster', () => {
  const client = ELASTICSEARCH_URL ? new Client({ node: ELASTICSEARCH_URL }) : undefined;
  const es = () => client!;

  async function aliasTargets(alias: string): Promise<string[]> {
    if (!(await es().indices.existsAlias({ name: alias }))) return [];
    return Object.keys(await es().indices.getAlias({ name: alias })).sort();
  }

  async function ledger(index = LEDGER): Promise<LedgerRecord[]> {
    await es().indices.refresh({ index, ignore_unavailable: true });
    const result = await es().search<LedgerRecord>({ index, ignore_unavailable: true, size: 100, sort: [{ appliedAt: 'asc' }] });
    return result.hits.hits.map((hit) => hit._source!);
  }

  const deleteAll = (pattern: string, template: string) => deleteIndices(es(), pattern, template);

  afterAll(async () => {
    if (!client) return;
    await deleteAll(`${PREFIX}-*`, TEMPLATE);
    await client.close();
  });

  it.skipIf(!ELASTICSEARCH_URL)(
    'a fresh cluster gets the index behind its alias and the template, recorded in the ledger; a second run changes nothing (needs ELASTICSEARCH_URL)',
    async () => {
      const first = await bootstrap(throwawayEngine());
      expect(first.engines[0]!.error).toBeUndefined();
      expect(first.ok).toBe(true);
      expect(first.engines[0]!.changed.map(({ change }) => [change.action, change.subject])).toEqual([
        ['create', `index ${ALIAS}_v1`],
        ['create', `index template ${TEMPLATE}`],
      ]);
      expect(await aliasTargets(ALIAS)).toEqual([`${ALIAS}_v1`]);
      const settings = await es().indices.getSettings({ index: `${ALIAS}_v1`, flat_settings: true });
      expect(settings[`${ALIAS}_v1`]!.settings).toMatchObject({ 'index.number_of_shards': '1', 'index.number_of_replicas': '0', 'index.refresh_interval': '1s' });
      expect((await es().indices.getIndexTemplate({ name: TEMPLATE })).index_templates[0]!.index_template.version).toBe(1);
      // Sorted: two records written within one millisecond have no order.
      expect((await ledger()).map((record) => [record.action, record.subject]).sort()).toEqual([
        ['create', `index ${ALIAS}_v1`],
        ['create', `index template ${TEMPLATE}`],
      ]);
      // The bookkeeping indices stay out of wildcard searches.
      const ledgerSettings = await es().indices.getSettings({ index: LEDGER, flat_settings: true });
      expect(ledgerSettings[LEDGER]!.settings).toMatchObject({ 'index.hidden': 'true', 'index.number_of_shards': '1', 'index.auto_expand_replicas': '0-1' });

      const second = await bootstrap(throwawayEngine());
      expect(second.ok).toBe(true);
      expect(second.engines[0]!.changed).toEqual([]);
      expect(second.engines[0]!.plan!.inSync).toHaveLength(2);
      expect(await ledger()).toHaveLength(2);
    },
  );

  it.skipIf(!ELASTICSEARCH_URL)('a new field is added to the live index in place, keeping its documents (needs ELASTICSEARCH_URL)', async () => {
    await bootstrap(throwawayEngine());
    await es().index({ index: ALIAS, id: 'a1', document: { id: 'a1', title: 'Sourdough at home', status: 'published' }, refresh: true });

    const report = await bootstrap(throwawayEngine(withSubtitle));
    expect(report.ok).toBe(true);
    expect(report.engines[0]!.changed.map(({ change }) => [change.action, change.subject])).toEqual([['update', `index ${ALIAS}_v1`]]);
    const mapping = await es().indices.getMapping({ index: `${ALIAS}_v1` });
    expect(mapping[`${ALIAS}_v1`]!.mappings.properties?.subtitle).toEqual({ type: 'text', analyzer: 'english_text' });
    expect((await es().count({ index: ALIAS })).count).toBe(1);
    expect(await aliasTargets(ALIAS)).toEqual([`${ALIAS}_v1`]);
    // And the document with the new field is accepted by the strict mapping now.
    await es().index({ index: ALIAS, id: 'a2', document: { id: 'a2', title: 'Rye', subtitle: 'A short guide', status: 'published' }, refresh: true });

    expect((await bootstrap(throwawayEngine(withSubtitle))).engines[0]!.changed).toEqual([]);
  });

  it.skipIf(!ELASTICSEARCH_URL)('a version bump reindexes into the next index and moves the alias in one step, keeping the old index (needs ELASTICSEARCH_URL)', async () => {
    await bootstrap(throwawayEngine(withSubtitle));
    const before = (await es().count({ index: ALIAS })).count;
    expect(before).toBeGreaterThan(0);

    const report = await bootstrap(throwawayEngine((desired) => withVersion(2)(withSubtitle(desired))));
    expect(report.engines[0]!.error).toBeUndefined();
    expect(report.engines[0]!.changed.map(({ change }) => [change.action, change.subject])).toEqual([['replace', `index ${ALIAS}_v2`]]);
    expect(report.engines[0]!.changed[0]!.change.detail).toContain(`${ALIAS}_v1 is kept`);
    expect(await aliasTargets(ALIAS)).toEqual([`${ALIAS}_v2`]);
    expect((await es().count({ index: `${ALIAS}_v2` })).count).toBe(before);
    expect(await es().indices.exists({ index: `${ALIAS}_v1` })).toBe(true);
    expect((await es().count({ index: `${ALIAS}_v1` })).count).toBe(before);

    const again = await bootstrap(throwawayEngine((desired) => withVersion(2)(withSubtitle(desired))));
    expect(again.engines[0]!.changed).toEqual([]);
    // The code going back a version is refused rather than undone.
    const behind = await bootstrap(throwawayEngine(withSubtitle));
    expect(behind.ok).toBe(false);
    expect(behind.engines[0]!.plan!.refusals[0]).toContain('the cluster is ahead of this code');
  });

  it.skipIf(!ELASTICSEARCH_URL)('a bootstrap waits for the lock and times out naming the holder; an expired lock is taken over (needs ELASTICSEARCH_URL)', async () => {
    const engine = throwawayEngine((desired) => withVersion(2)(withSubtitle(desired)));
    const holder = new ElasticsearchAdapter(ELASTICSEARCH_URL!, {
      readyTimeoutMs: 10_000,
      lockTimeoutMs: 10_000,
      lockLeaseMs: 1500,
      watch: { aliases: [], templates: [] },
      lockIndex: LOCK,
      ledgerIndex: LEDGER,
    });
    await holder.connect();
    await holder.lock();
    try {
      // Longer than the lease: the holder's renewals keep it.
      const blocked = await bootstrap(engine, { lockTimeoutMs: 2500 });
      expect(blocked.ok).toBe(false);
      expect(blocked.engines[0]!.error).toMatch(/^elasticsearch: another bootstrap still holds the lock after 2\.5 s \(held by .+\/\d+\/[0-9a-f-]{36}, lease until /);
    } finally {
      await holder.close();
    }
    expect((await bootstrap(engine, { lockTimeoutMs: 2500 })).ok).toBe(true);

    // A holder killed without releasing: its lease runs out and the next bootstrap takes over.
    await es().index({ index: LOCK, id: 'lock', document: { holder: 'killed-host/1/deadbeef', expiresAt: new Date(Date.now() - 1000).toISOString() }, refresh: true });
    const takeover = await bootstrap(engine, { lockTimeoutMs: 2500 });
    expect(takeover.ok).toBe(true);
    expect(
      (
        await es()
          .get({ index: LOCK, id: 'lock' })
          .catch(() => ({ found: false }))
      ).found,
    ).toBe(false);
  });

  it.skipIf(!ELASTICSEARCH_URL)(
    'the real definitions on a THROWAWAY cluster: deletes articles, articles_v*, the search-analytics template and the bootstrap ledger and lock first, applies, and a second run changes nothing (needs ELASTICSEARCH_URL)',
    async () => {
      await deleteAll('articles,articles_v*', 'search-analytics');
      for (const index of [LEDGER_INDEX, LOCK_INDEX]) await es().indices.delete({ index, ignore_unavailable: true });

      const first = await bootstrap(elasticsearchEngine);
      expect(first.engines[0]!.error).toBeUndefined();
      expect(first.engines[0]!.changed.map(({ change }) => change.subject)).toEqual(['index articles_v1', 'index template search-analytics']);
      expect(await aliasTargets('articles')).toEqual(['articles_v1']);

      const second = await bootstrap(elasticsearchEngine);
      expect(second.ok).toBe(true);
      expect(second.engines[0]!.changed).toEqual([]);
      const template = (await es().indices.getIndexTemplate({ name: 'search-analytics' })).index_templates[0]!.index_template as estypes.IndicesIndexTemplate;
      expect(template.index_patterns).toEqual(['search-analytics-*']);
    },
  );
});
