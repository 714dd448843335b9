/**
 * The Elasticsearch bootstrap's decisions on plain data: what the planner makes of a cluster that
 * is empty, in sync, behind or ahead of the definitions, and of the ways a cluster can be left
 * half done. The observed states are written the way Elasticsearch returns them (flat string
 * settings, parameters at their default left out, fields the server adds), since that is what
 * the adapter hands the planner.
 */
import type { estypes } from '@elastic/elasticsearch';
import { describe, expect, it } from 'vitest';
import { ENVIRONMENTS, type Environment } from '../../databases/engine.ts';
import { elasticsearchDesired, elasticsearchEngine, environmentFrom } from '../../bootstrap/adapters/elasticsearch.ts';
import { flatSettings } from '../../bootstrap/adapters/elasticsearch-compare.ts';
import {
  planElasticsearch,
  type DesiredIndex,
  type ElasticsearchDesired,
  type ElasticsearchObserved,
  type ElasticsearchPayload,
  type ObservedAliasedIndex,
  type ObservedIndex,
} from '../../bootstrap/adapters/elasticsearch-plan.ts';
import { runBootstrap } from '../../bootstrap/runner.ts';

const roundTrip = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

const desiredFor = (environment: Environment): ElasticsearchDesired => elasticsearchDesired(environment, `ALLIXIOS_ENVIRONMENT=${environment}`);
const DEV = desiredFor('dev');
const ARTICLES = DEV.indices[0]!;
const TEMPLATE = DEV.templates[0]!.request;

/** Settings the way GET <index>/_settings?flat_settings=true returns them: `index.` keys, strings. */
function asFlatSettings(settings: Record<string, unknown>, prefix = 'index'): Record<string, unknown> {
  const flat: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(settings)) {
    const path = `${prefix}.${key}`;
    if (Array.isArray(value)) flat[path] = value.map(String);
    else if (value !== null && typeof value === 'object') Object.assign(flat, asFlatSettings(value as Record<string, unknown>, path));
    else flat[path] = String(value);
  }
  return flat;
}

/** articles_v<N> as the cluster describes it after the bootstrap created it from `definition`. */
function liveIndex(definition: DesiredIndex = ARTICLES): ObservedIndex {
  const mappings = roundTrip(definition.mappings);
  // GET _mapping leaves out a parameter set to its default.
  const popularity = mappings.properties?.popularity as Record<string, unknown> | undefined;
  if (popularity) delete popularity.positive_score_impact;
  const settings = asFlatSettings(definition.settings as Record<string, unknown>);
  // What the server adds: identity, creation, and the replica count it derives from a range.
  Object.assign(settings, {
    'index.creation_date': '1767225600000',
    'index.uuid': 'mJq1h0bWQ8u2r3xXk5yYzA',
    'index.provided_name': definition.index,
    'index.version.created': '9033000',
    'index.routing.allocation.include._tier_preference': 'data_content',
  });
  if (!('index.number_of_replicas' in settings)) settings['index.number_of_replicas'] = '0';
  return { mappings, settings };
}

function aliased(alias: string, targets: string[], versions: Record<string, ObservedIndex>, nameTakenByIndex = false): ObservedAliasedIndex {
  return { alias, aliasTargets: targets, nameTakenByIndex, versions };
}

/** The search-analytics template as GET _index_template?flat_settings=true returns it. */
function liveTemplate(request: estypes.IndicesPutIndexTemplateRequest = TEMPLATE): estypes.IndicesIndexTemplate {
  return {
    index_patterns: roundTrip(request.index_patterns as string[]),
    composed_of: [],
    ...(request.priority !== undefined ? { priority: request.priority } : {}),
    ...(request.version !== undefined ? { version: request.version } : {}),
    ...(request._meta ? { _meta: roundTrip(request._meta) } : {}),
    data_stream: { hidden: false, allow_custom_routing: false },
    template: {
      settings: asFlatSettings(request.template!.settings as Record<string, unknown>) as estypes.IndicesIndexSettings,
      mappings: roundTrip(request.template!.mappings!),
      lifecycle: { enabled: true, ...roundTrip(request.template!.lifecycle!) },
    },
    created_date_millis: 1767225600000,
    modified_date_millis: 1767225600000,
  };
}

function cluster(
  indices: ObservedAliasedIndex[],
  templates: ElasticsearchObserved['templates'] = { 'search-analytics': liveTemplate() },
  ledger: ElasticsearchObserved['ledger'] = [],
): ElasticsearchObserved {
  return { indices, templates, ledger };
}

/** The cluster exactly as a bootstrap of the dev definitions leaves it. */
const IN_SYNC = cluster([aliased('articles', ['articles_v1'], { articles_v1: liveIndex() })]);

/** The definitions with the articles index replaced. */
function withArticles(change: Partial<DesiredIndex>, base: ElasticsearchDesired = DEV): ElasticsearchDesired {
  return { ...base, indices: [{ ...base.indices[0]!, ...change }] };
}

const summary = (plan: ReturnType<typeof planElasticsearch>) => plan.changes.map((change): [string, string] => [change.action, change.subject]);
const payloadOf = <Kind extends ElasticsearchPayload['kind']>(plan: ReturnType<typeof planElasticsearch>, kind: Kind) =>
  plan.changes.map((change) => change.payload).find((payload): payload is Extract<ElasticsearchPayload, { kind: Kind }> => payload.kind === kind);

describe('the articles index behind its alias', () => {
  it('on an empty cluster: creates articles_v1 with settings, mappings and the alias in one change', () => {
    const plan = planElasticsearch(DEV, cluster([aliased('articles', [], {})], { 'search-analytics': liveTemplate() }), {});

    expect(summary(plan)).toEqual([['create', 'index articles_v1']]);
    expect(plan.refusals).toEqual([]);
    const payload = payloadOf(plan, 'create-index')!;
    expect(payload).toMatchObject({ alias: 'articles', index: 'articles_v1', deleteExisting: false });
    expect(payload.settings).toMatchObject({ number_of_shards: 1, number_of_replicas: 0, refresh_interval: '1s' });
    expect(payload.mappings).toBe(ARTICLES.mappings);
    expect(plan.changes[0]!.detail).toBe('missing: created with the alias articles, settings for dev (ALLIXIOS_ENVIRONMENT=dev)');
    expect(plan.changes[0]!.source).toBe('databases/elasticsearch/mappings/articles.ts');
  });

  it('as the bootstrap created it: in sync, although the cluster returns strings, server fields and no default parameters', () => {
    const plan = planElasticsearch(DEV, IN_SYNC, {});

    expect(plan.changes).toEqual([]);
    expect(plan.refusals).toEqual([]);
    expect(plan.inSync).toEqual(['index articles_v1 (behind the alias articles)', 'index template search-analytics (version 1)']);
  });

  it('a new field: updated in place on the live index with the whole desired mapping', () => {
    const mappings: estypes.MappingTypeMapping = { ...ARTICLES.mappings, properties: { ...ARTICLES.mappings.properties, subtitle: { type: 'text', analyzer: 'english_text' } } };
    const plan = planElasticsearch(withArticles({ mappings }), IN_SYNC, {});

    expect(summary(plan)).toEqual([['update', 'index articles_v1']]);
    expect(plan.changes[0]!.detail).toBe('in place, behind the alias articles: mapping: subtitle: new text field');
    expect(payloadOf(plan, 'update-index')).toEqual({ kind: 'update-index', index: 'articles_v1', mappings });
  });

  it('a breaking mapping change at the same version: refused, naming the field and asking for the next version', () => {
    const mappings: estypes.MappingTypeMapping = { ...ARTICLES.mappings, properties: { ...ARTICLES.mappings.properties, view_count: { type: 'integer' } } };
    const plan = planElasticsearch(withArticles({ mappings }), IN_SYNC, {});

    expect(plan.changes).toEqual([]);
    expect(plan.refusals).toEqual([
      'index articles_v1: changes Elasticsearch cannot apply to an existing index (view_count: type changed from long to integer); ' +
        'bump `version` in databases/elasticsearch/definitions.ts to reindex into articles_v2',
    ]);
  });

  it('a changed analyzer definition or shard count at the same version: refused as well (both are fixed at creation)', () => {
    const analysis = roundTrip(ARTICLES.settings.analysis!);
    analysis.filter!.english_stemmer = { type: 'stemmer', language: 'light_english' };
    const analyzer = planElasticsearch(withArticles({ settings: { ...ARTICLES.settings, analysis } }), IN_SYNC, {});
    expect(analyzer.refusals).toEqual([
      'index articles_v1: changes Elasticsearch cannot apply to an existing index (settings: analysis differs ' +
        '(analysis.filter.english_stemmer.language "english" → "light_english")); bump `version` in databases/elasticsearch/definitions.ts to reindex into articles_v2',
    ]);

    const shards = planElasticsearch(withArticles({ settings: { ...ARTICLES.settings, number_of_shards: 2 } }), IN_SYNC, {});
    expect(shards.refusals).toHaveLength(1);
    expect(shards.refusals[0]).toContain('settings: number_of_shards "1" → "2"');
    expect(shards.changes).toEqual([]);
  });

  it('replicas and refresh of another environment: updated in place with PUT _settings, both ways', () => {
    const toStaging = planElasticsearch(desiredFor('staging'), IN_SYNC, {});
    expect(summary(toStaging)).toEqual([
      ['update', 'index articles_v1'],
      ['update', 'index template search-analytics'],
    ]);
    expect(payloadOf(toStaging, 'update-index')).toEqual({ kind: 'update-index', index: 'articles_v1', settings: { auto_expand_replicas: '0-1', refresh_interval: '5s' } });
    expect(toStaging.changes[0]!.detail).toBe(
      'in place, behind the alias articles: settings (settings for staging (ALLIXIOS_ENVIRONMENT=staging)): auto_expand_replicas "false" → "0-1"; refresh_interval "1s" → "5s"',
    );

    const stagingCluster = cluster([aliased('articles', ['articles_v1'], { articles_v1: liveIndex(desiredFor('staging').indices[0]) })]);
    const toDev = planElasticsearch(DEV, stagingCluster, {});
    // auto_expand_replicas: null resets the range, so the fixed count holds.
    expect(payloadOf(toDev, 'update-index')).toEqual({
      kind: 'update-index',
      index: 'articles_v1',
      settings: { auto_expand_replicas: null, number_of_replicas: '0', refresh_interval: '1s' },
    });
  });

  it('a version bump: one replace change that creates articles_v2, reindexes from articles_v1 and moves the alias, keeping articles_v1', () => {
    const plan = planElasticsearch(withArticles({ version: 2, index: 'articles_v2' }), IN_SYNC, {});

    expect(summary(plan)).toEqual([['replace', 'index articles_v2']]);
    expect(plan.refusals).toEqual([]);
    expect(payloadOf(plan, 'reindex')).toMatchObject({ kind: 'reindex', alias: 'articles', from: 'articles_v1', to: 'articles_v2', deleteExisting: false });
    expect(plan.changes[0]!.detail).toBe(
      'version 1 → 2: create articles_v2 (settings for dev (ALLIXIOS_ENVIRONMENT=dev)), reindex from articles_v1, move the alias articles from articles_v1 to articles_v2 ' +
        'in one _aliases call; articles_v1 is kept (delete it when no longer needed: DELETE /articles_v1)',
    );
  });

  it('a next version left by an interrupted run: refused, or deleted and rebuilt with --replace-indexes', () => {
    const interrupted = cluster([aliased('articles', ['articles_v1'], { articles_v1: liveIndex(), articles_v2: liveIndex({ ...ARTICLES, version: 2, index: 'articles_v2' }) })]);
    const desired = withArticles({ version: 2, index: 'articles_v2' });

    const refused = planElasticsearch(desired, interrupted, {});
    expect(refused.changes).toEqual([]);
    expect(refused.refusals).toEqual([
      'index articles_v2: exists, but the alias articles still points at articles_v1: an earlier bootstrap stopped between creating it and moving the alias ' +
        '(or it was created by hand). Delete it (DELETE /articles_v2) or run with --replace-indexes to delete it and reindex again',
    ]);

    const replaced = planElasticsearch(desired, interrupted, { replaceIndexes: true });
    expect(replaced.refusals).toEqual([]);
    expect(payloadOf(replaced, 'reindex')).toMatchObject({ from: 'articles_v1', to: 'articles_v2', deleteExisting: true });
    expect(replaced.changes[0]!.detail).toContain('delete the incomplete articles_v2, create articles_v2');
  });

  it('the alias on a newer version than the code defines: refused, the cluster is ahead', () => {
    const ahead = cluster([aliased('articles', ['articles_v3'], { articles_v1: liveIndex(), articles_v3: liveIndex() })]);
    const plan = planElasticsearch(DEV, ahead, {});

    expect(plan.changes).toEqual([]);
    expect(plan.refusals).toEqual([
      'alias articles: points at articles_v3, version 3, but databases/elasticsearch/definitions.ts defines version 1: the cluster is ahead of this code ' +
        '(a newer release bootstrapped it); deploy that release, or move the alias back to articles_v1 by hand if this is a rollback',
    ]);
  });

  it('the alias on two indices: refused, naming both', () => {
    const plan = planElasticsearch(DEV, cluster([aliased('articles', ['articles_v2', 'articles_v1'], { articles_v1: liveIndex(), articles_v2: liveIndex() })]), {});

    expect(plan.changes).toEqual([]);
    expect(plan.refusals).toEqual([
      'alias articles: points at 2 indices (articles_v1, articles_v2), so reads would mix them and writes fail; remove it from all but the current one (POST /_aliases with remove actions), then run again',
    ]);
  });

  it('the alias on an index that is not one of its versions: refused', () => {
    const plan = planElasticsearch(DEV, cluster([aliased('articles', ['articles-restored'], {})]), {});
    expect(plan.refusals).toEqual([
      'alias articles: points at articles-restored, which is not a version of it (articles_v<N>); reindex articles-restored into articles_v1 and move the alias by hand, then run again',
    ]);
  });

  it('an index named like the alias (auto-created by an early write): refused, since the alias cannot be created beside it', () => {
    const plan = planElasticsearch(DEV, cluster([aliased('articles', [], {}, true)]), { replaceIndexes: true });
    expect(plan.changes).toEqual([]);
    expect(plan.refusals).toHaveLength(1);
    expect(plan.refusals[0]).toMatch(/^alias articles: articles is an index \(or data stream\), not an alias; .*DELETE \/articles/);
  });

  it('versions without the alias: refused; --replace-indexes recreates the desired one, empty, with the alias', () => {
    const orphan = cluster([aliased('articles', [], { articles_v1: liveIndex() })]);

    const refused = planElasticsearch(DEV, orphan, {});
    expect(refused.changes).toEqual([]);
    expect(refused.refusals).toEqual([
      'alias articles: missing, but articles_v1 exists; point the alias at the one that is current (POST /_aliases {"actions":[{"add":{"index":"…","alias":"articles"}}]}) ' +
        'so the bootstrap continues from it, or delete it to start empty (or run with --replace-indexes to recreate articles_v1 empty)',
    ]);

    const replaced = planElasticsearch(DEV, orphan, { replaceIndexes: true });
    expect(summary(replaced)).toEqual([['replace', 'index articles_v1']]);
    expect(payloadOf(replaced, 'create-index')).toMatchObject({ alias: 'articles', index: 'articles_v1', deleteExisting: true });

    // An older version alone is not the desired index: the flag does not delete it.
    const older = cluster([aliased('articles', [], { articles_v1: liveIndex() })]);
    expect(planElasticsearch(withArticles({ version: 2, index: 'articles_v2' }), older, { replaceIndexes: true }).refusals).toHaveLength(1);
  });
});

describe('the search-analytics index template', () => {
  const onlyTemplate = (templates: ElasticsearchObserved['templates']) => cluster([aliased('articles', ['articles_v1'], { articles_v1: liveIndex() })], templates);

  it('missing: created', () => {
    const plan = planElasticsearch(DEV, onlyTemplate({ 'search-analytics': null }), {});
    expect(summary(plan)).toEqual([['create', 'index template search-analytics']]);
    expect(payloadOf(plan, 'put-template')).toEqual({ kind: 'put-template', request: TEMPLATE });
    expect(plan.changes[0]!.source).toBe('databases/elasticsearch/mappings/search-analytics.ts');
  });

  it('as put: in sync, ignoring what the server adds (composed_of, data_stream flags, lifecycle.enabled, dates)', () => {
    const plan = planElasticsearch(DEV, onlyTemplate({ 'search-analytics': liveTemplate() }), {});
    expect(plan.changes).toEqual([]);
    expect(plan.inSync).toContain('index template search-analytics (version 1)');
  });

  it('different: updated, naming each difference (another environment, a new version, a changed pattern)', () => {
    const live = liveTemplate();
    live.version = 0;
    live.index_patterns = ['search-analytics*'];
    const plan = planElasticsearch(desiredFor('prod'), onlyTemplate({ 'search-analytics': live }), {});

    expect(summary(plan).filter(([, subject]) => subject.startsWith('index template'))).toEqual([['update', 'index template search-analytics']]);
    const detail = plan.changes.find((change) => change.subject === 'index template search-analytics')!.detail;
    expect(detail).toBe(
      'index_patterns ["search-analytics*"] → ["search-analytics-*"]; version 0 → 1; ' +
        'template.settings.auto_expand_replicas (unset) → "0-1"; template.settings.number_of_replicas "0" → (unset); template.settings.refresh_interval "1s" → "30s"; ' +
        'template.lifecycle.data_retention "7d" → "90d" (settings for prod (ALLIXIOS_ENVIRONMENT=prod)); applies to backing indices created from now on, not to existing ones',
    );
  });

  it('a changed template mapping or a template that no longer makes data streams: updated', () => {
    const live = liveTemplate();
    delete live.data_stream;
    delete (live.template!.mappings!.properties as Record<string, unknown>).latency_ms;
    const plan = planElasticsearch(DEV, onlyTemplate({ 'search-analytics': live }), {});
    const detail = plan.changes[0]!.detail;
    expect(detail).toContain('data_stream (unset) → {}');
    expect(detail).toContain('template.mappings: latency_ms: new integer field');
  });
});

describe('the desired state and the ledger', () => {
  it('the offline plan of the real definitions creates the index with its alias and the template, in every environment', () => {
    for (const environment of ENVIRONMENTS) {
      const plan = planElasticsearch(desiredFor(environment), null, {});
      expect(summary(plan)).toEqual([
        ['create', 'index articles_v1'],
        ['create', 'index template search-analytics'],
      ]);
      expect(plan.refusals).toEqual([]);
      expect(plan.changes.every((change) => change.detail.includes(`settings for ${environment}`))).toBe(true);
    }
  });

  it('ALLIXIOS_ENVIRONMENT chooses the settings: dev when unset, an error naming the variable for a value it does not know', () => {
    expect(environmentFrom({})).toEqual({ environment: 'dev', from: 'ALLIXIOS_ENVIRONMENT unset' });
    expect(environmentFrom({ ALLIXIOS_ENVIRONMENT: 'prod' })).toEqual({ environment: 'prod', from: 'ALLIXIOS_ENVIRONMENT=prod' });
    expect(() => environmentFrom({ ALLIXIOS_ENVIRONMENT: 'production' })).toThrow('ALLIXIOS_ENVIRONMENT: expected one of dev, staging, prod, ephemeral, got "production"');

    const desired = elasticsearchEngine.desired({ ALLIXIOS_ENVIRONMENT: 'prod' });
    expect(desired.environment).toBe('prod');
    expect(desired.indices[0]!.settings).toMatchObject({ auto_expand_replicas: '0-1', refresh_interval: '5s' });
    expect(desired.templates[0]!.request.template?.lifecycle).toEqual({ data_retention: '90d' });
  });

  it('the runner’s offline dry run plans the engine without a URL or a cluster', async () => {
    const report = await runBootstrap({
      mode: 'dry-run',
      offline: true,
      env: { ALLIXIOS_ENVIRONMENT: 'staging' },
      registry: [elasticsearchEngine],
      readyTimeoutMs: 1000,
      lockTimeoutMs: 1000,
    });

    expect(report.ok).toBe(true);
    expect(report.engines[0]!.plan!.changes.map((change) => change.subject)).toEqual(['index articles_v1', 'index template search-analytics']);
    expect(report.engines[0]!.plan!.changes[0]!.detail).toContain('settings for staging (ALLIXIOS_ENVIRONMENT=staging)');
  });

  it('an unknown ALLIXIOS_ENVIRONMENT fails the engine with a message naming the variable', async () => {
    const report = await runBootstrap({
      mode: 'dry-run',
      offline: true,
      env: { ALLIXIOS_ENVIRONMENT: 'qa' },
      registry: [elasticsearchEngine],
      readyTimeoutMs: 1000,
      lockTimeoutMs: 1000,
    });
    expect(report.ok).toBe(false);
    expect(report.engines[0]!.error).toBe('elasticsearch: ALLIXIOS_ENVIRONMENT: expected one of dev, staging, prod, ephemeral, got "qa"');
  });

  it('an in-sync subject says when and by whom the ledger last recorded a change to it', () => {
    const ledger = [
      { subject: 'index articles_v1', action: 'create' as const, detail: 'missing: …', appliedAt: '2026-01-05T10:00:00.000Z', appliedBy: 'elastic from bootstrap-job-7' },
      { subject: 'index template search-analytics', action: 'update' as const, detail: '…', appliedAt: '2026-02-01T08:30:00.000Z', appliedBy: 'elastic from laptop' },
    ];
    const plan = planElasticsearch(DEV, { ...IN_SYNC, ledger }, {});
    expect(plan.inSync).toEqual([
      'index articles_v1 (behind the alias articles; last create 2026-01-05T10:00:00.000Z by elastic from bootstrap-job-7)',
      'index template search-analytics (version 1; last update 2026-02-01T08:30:00.000Z by elastic from laptop)',
    ]);
  });
});

describe('reading the cluster’s spelling', () => {
  it('flatSettings: nested or flat, numbers or strings, lists as arrays or as numbered keys, all the same', () => {
    const nested = flatSettings({ number_of_shards: 1, analysis: { analyzer: { a: { filter: ['lowercase', 'asciifolding'], char_filter: [] } } } });
    const flat = flatSettings({ 'index.number_of_shards': '1', 'index.analysis.analyzer.a.filter.0': 'lowercase', 'index.analysis.analyzer.a.filter.1': 'asciifolding' });
    expect([...nested]).toEqual([
      ['number_of_shards', '1'],
      ['analysis.analyzer.a.filter', ['lowercase', 'asciifolding']],
    ]);
    expect(new Map(flat)).toEqual(new Map(nested));
  });

  it('a parameter set to something other than its default still counts (positive_score_impact: false)', () => {
    const mappings = roundTrip(ARTICLES.mappings);
    (mappings.properties!.popularity as estypes.MappingRankFeatureProperty).positive_score_impact = false;
    const plan = planElasticsearch(withArticles({ mappings }), IN_SYNC, {});
    expect(plan.refusals[0]).toContain('popularity: positive_score_impact changed from (unset) to false');
  });
});
