/**
 * The Elasticsearch asset definitions (databases/elasticsearch/definitions.ts): the articles
 * index (settings, analysis, mapping), the search-analytics index template, and the pure helpers
 * the bootstrap plans with (classifyMappingChange, nextIndexName).
 *
 * No Elasticsearch runs on this machine (ENGINES.md). Without one: the definitions are typed with
 * the client's estypes (proved below by compiling misspelled snippets), every analysis component
 * a field names exists, the settings per environment are what the README says, and the change
 * classification is tested on plain data. With ELASTICSEARCH_URL set, the index and the template
 * are created in the real cluster under throwaway names and removed again; without it those tests
 * are skipped.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, errors, type estypes } from '@elastic/elasticsearch';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ENVIRONMENTS } from '../databases/engine.ts';
import { elasticsearch } from '../databases/elasticsearch/index.ts';
import {
  ARTICLE_ANALYZERS,
  SEARCH_ANALYTICS_PATTERN,
  articlesIndex,
  classifyMappingChange,
  elasticsearchAssets,
  nextIndexName,
  parseIndexVersion,
  searchAnalyticsTemplate,
} from '../databases/elasticsearch/definitions.ts';
import { typeErrors } from './support/typecheck.ts';

const ELASTICSEARCH_URL = process.env.ELASTICSEARCH_URL;

// Compile-time: a misspelled mapping parameter is a type error. `tsc -p .` fails if this line
// ever compiles (an unused @ts-expect-error is an error); the "type errors" test below proves
// the same at run time.
// @ts-expect-error analyser is not a mapping parameter (analyzer is)
const misspelledMapping: estypes.MappingTypeMapping = { properties: { title: { type: 'text', analyser: 'english' } } };
void misspelledMapping;

/** A deep copy, as the mapping comes back from the cluster's JSON. */
function roundTrip<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** Built-in analysis components the definitions may name without defining them (Elasticsearch
 * reference, "Tokenizer reference" and "Token filter reference"): only the ones used here, so a
 * typo of another built-in is still reported. */
const BUILT_IN_TOKENIZERS = new Set(['standard']);
const BUILT_IN_FILTERS = new Set(['lowercase', 'asciifolding']);
/** Analyzers a field may name without defining them: the default one. */
const BUILT_IN_ANALYZERS = new Set(['standard']);
/** Filters a normalizer may use (Elasticsearch reference, "Normalizers"). */
const NORMALIZER_FILTERS = new Set([
  'arabic_normalization',
  'asciifolding',
  'bengali_normalization',
  'cjk_width',
  'decimal_digit',
  'elision',
  'german_normalization',
  'hindi_normalization',
  'indic_normalization',
  'lowercase',
  'pattern_replace',
  'persian_normalization',
  'scandinavian_folding',
  'serbian_normalization',
  'sorani_normalization',
  'trim',
  'uppercase',
]);

function asList(value: string | string[] | undefined): string[] {
  return value === undefined ? [] : typeof value === 'string' ? [value] : value;
}

/**
 * Every reference from a mapping to analysis settings, and from custom analyzers and normalizers
 * to their components, that does not resolve. One sentence per dangling name.
 */
function danglingAnalysisReferences(analysis: estypes.IndicesIndexSettingsAnalysis, mappings: estypes.MappingTypeMapping): string[] {
  const problems: string[] = [];
  const analyzers = analysis.analyzer ?? {};
  const normalizers = analysis.normalizer ?? {};
  const tokenizers = analysis.tokenizer ?? {};
  const filters = analysis.filter ?? {};
  const charFilters = analysis.char_filter ?? {};

  const visit = (properties: Record<string, estypes.MappingProperty> | undefined, prefix: string): void => {
    for (const [name, field] of Object.entries(properties ?? {})) {
      const path = `${prefix}${name}`;
      const record = field as Record<string, unknown>;
      for (const parameter of ['analyzer', 'search_analyzer', 'search_quote_analyzer']) {
        const analyzer = record[parameter];
        if (typeof analyzer === 'string' && !(analyzer in analyzers) && !BUILT_IN_ANALYZERS.has(analyzer)) {
          problems.push(`${path}: ${parameter} ${analyzer} is not defined in settings.analysis.analyzer`);
        }
      }
      if (typeof record.normalizer === 'string' && !(record.normalizer in normalizers)) {
        problems.push(`${path}: normalizer ${record.normalizer} is not defined in settings.analysis.normalizer`);
      }
      visit(record.properties as Record<string, estypes.MappingProperty> | undefined, `${path}.`);
      visit(record.fields as Record<string, estypes.MappingProperty> | undefined, `${path}.`);
    }
  };
  visit(mappings.properties, '');

  for (const [name, analyzer] of Object.entries(analyzers)) {
    if (analyzer.type !== 'custom') continue;
    if (!(analyzer.tokenizer in tokenizers) && !BUILT_IN_TOKENIZERS.has(analyzer.tokenizer)) {
      problems.push(`analyzer ${name}: tokenizer ${analyzer.tokenizer} is not defined`);
    }
    for (const filter of asList(analyzer.filter)) {
      if (!(filter in filters) && !BUILT_IN_FILTERS.has(filter)) problems.push(`analyzer ${name}: filter ${filter} is not defined`);
    }
    for (const charFilter of asList(analyzer.char_filter)) {
      if (!(charFilter in charFilters)) problems.push(`analyzer ${name}: char_filter ${charFilter} is not defined`);
    }
  }
  for (const [name, normalizer] of Object.entries(normalizers)) {
    if (normalizer.type !== 'custom') continue;
    for (const filter of normalizer.filter ?? []) {
      // A normalizer emits one token, so only per-character filters are allowed in it.
      if (!NORMALIZER_FILTERS.has(filter)) problems.push(`normalizer ${name}: filter ${filter} is not allowed in a normalizer`);
    }
  }
  return problems;
}

const articlesSettings = (environment: (typeof ENVIRONMENTS)[number]): estypes.IndicesIndexSettingsKeys => articlesIndex.settings(environment);
const articlesAnalysis = articlesSettings('prod').analysis as estypes.IndicesIndexSettingsAnalysis;

describe('the definitions are typed with the client’s estypes', () => {
  it('type errors: a misspelled mapping or settings parameter does not compile, the correct spelling does', () => {
    const lines = [
      "import type { estypes } from '@elastic/elasticsearch';",
      "export const misspelled: estypes.MappingTypeMapping = { properties: { title: { type: 'text', analyser: 'english' } } };",
      "export const correct: estypes.MappingTypeMapping = { properties: { title: { type: 'text', analyzer: 'english' } } };",
      "export const unknownType: estypes.MappingTypeMapping = { properties: { title: { type: 'txt' } } };",
      'export const settingsTypo: estypes.IndicesIndexSettingsKeys = { number_of_shard: 1 };',
      // Why the definitions use IndicesIndexSettingsKeys: IndicesIndexSettings has an index
      // signature, so the same typo passes there.
      'export const looseSettings: estypes.IndicesIndexSettings = { number_of_shard: 1 };',
    ];
    const errorsOfSnippet = typeErrors(lines.join('\n'));
    const on = (constant: string): string[] => {
      const line = lines.findIndex((text) => text.includes(`const ${constant}:`)) + 1;
      return errorsOfSnippet.filter((error) => error.startsWith(`line ${line}:`));
    };
    expect(on('misspelled')).toEqual([expect.stringContaining("'analyser' does not exist")]);
    expect(on('unknownType')).toHaveLength(1);
    expect(on('settingsTypo')).toEqual([expect.stringContaining("'number_of_shard' does not exist")]);
    expect(on('correct')).toEqual([]);
    expect(on('looseSettings')).toEqual([]);
  });
});

describe('articles index', () => {
  it('is version 1 of the alias articles, in the index articles_v1', () => {
    expect(articlesIndex).toMatchObject({ alias: 'articles', version: 1, index: 'articles_v1' });
    expect(elasticsearchAssets('prod').indices).toEqual([articlesIndex]);
  });

  it('every analyzer and normalizer a field names is defined, and so is every component they use', () => {
    expect(danglingAnalysisReferences(articlesAnalysis, articlesIndex.mappings)).toEqual([]);
  });

  it('the reference check reports an undefined analyzer, filter and a stemmer in a normalizer', () => {
    const broken: estypes.IndicesIndexSettingsAnalysis = {
      analyzer: { a: { type: 'custom', tokenizer: 'standard', filter: ['lowercase', 'english_stemer'] } },
      normalizer: { n: { type: 'custom', filter: ['lowercase', 'english_stemmer'] } },
    };
    const mappings: estypes.MappingTypeMapping = {
      properties: { title: { type: 'text', analyzer: 'a', fields: { auto: { type: 'text', analyzer: 'autocomplete' } } }, tag: { type: 'keyword', normalizer: 'facets' } },
    };
    expect(danglingAnalysisReferences(broken, mappings)).toEqual([
      'title.auto: analyzer autocomplete is not defined in settings.analysis.analyzer',
      'tag: normalizer facets is not defined in settings.analysis.normalizer',
      'analyzer a: filter english_stemer is not defined',
      'normalizer n: filter english_stemmer is not allowed in a normalizer',
    ]);
  });

  it('analyses English with possessive, stop and stemming filters, and autocompletes with edge n-grams at index time only', () => {
    const analyzers = articlesAnalysis.analyzer ?? {};
    expect(analyzers[ARTICLE_ANALYZERS.english]).toMatchObject({
      tokenizer: 'standard',
      filter: ['english_possessive_stemmer', 'lowercase', 'asciifolding', 'english_stop', 'english_stemmer'],
    });
    expect(articlesAnalysis.filter).toMatchObject({
      english_possessive_stemmer: { type: 'stemmer', language: 'possessive_english' },
      english_stop: { type: 'stop', stopwords: '_english_' },
      english_stemmer: { type: 'stemmer', language: 'english' },
    });
    expect(articlesAnalysis.tokenizer?.autocomplete_edge_ngram).toMatchObject({ type: 'edge_ngram', min_gram: 2, max_gram: 20 });
    const title = articlesIndex.mappings.properties?.title as estypes.MappingTextProperty;
    expect(title.fields?.autocomplete).toEqual({ type: 'text', analyzer: 'autocomplete_index', search_analyzer: 'autocomplete_search' });
    // The search side splits like `standard` and never produces n-grams.
    expect(analyzers.autocomplete_search).toMatchObject({ tokenizer: 'standard' });
    expect(analyzers.autocomplete_search).not.toHaveProperty('tokenizer', 'autocomplete_edge_ngram');
    // Truncation at search time matches the longest indexed prefix.
    expect(articlesAnalysis.filter?.autocomplete_truncate).toEqual({ type: 'truncate', length: 20 });
    expect(articlesAnalysis.normalizer?.facet_keyword).toEqual({ type: 'custom', char_filter: [], filter: ['lowercase', 'asciifolding'] });
  });

  it('maps the article fields strictly, with nested tags and facet keywords', () => {
    const mappings = articlesIndex.mappings;
    expect(mappings.dynamic).toBe('strict');
    const properties = mappings.properties ?? {};
    expect(Object.keys(properties).sort()).toEqual(
      ['author', 'body', 'category', 'excerpt', 'id', 'popularity', 'published_at', 'reading_time_minutes', 'slug', 'status', 'tags', 'title', 'updated_at', 'view_count'].sort(),
    );
    const types = Object.fromEntries(Object.entries(properties).map(([name, field]) => [name, field.type ?? 'object']));
    expect(types).toEqual({
      id: 'keyword',
      slug: 'keyword',
      title: 'text',
      excerpt: 'text',
      body: 'text',
      status: 'keyword',
      category: 'object',
      tags: 'nested',
      author: 'object',
      published_at: 'date',
      updated_at: 'date',
      reading_time_minutes: 'integer',
      view_count: 'long',
      popularity: 'rank_feature',
    });
    expect(properties.tags).toEqual({ type: 'nested', properties: { slug: { type: 'keyword' }, name: { type: 'keyword', normalizer: 'facet_keyword', ignore_above: 100 } } });
    expect((properties.title as estypes.MappingTextProperty).fields?.keyword).toEqual({ type: 'keyword', normalizer: 'facet_keyword', ignore_above: 300 });
  });

  it('sizes shards, replicas and refresh per environment', () => {
    const sizes = Object.fromEntries(
      ENVIRONMENTS.map((environment) => {
        const { number_of_shards, number_of_replicas, auto_expand_replicas, refresh_interval } = articlesSettings(environment);
        return [environment, { number_of_shards, number_of_replicas, auto_expand_replicas, refresh_interval }];
      }),
    );
    expect(sizes).toEqual({
      dev: { number_of_shards: 1, number_of_replicas: 0, auto_expand_replicas: undefined, refresh_interval: '1s' },
      ephemeral: { number_of_shards: 1, number_of_replicas: 0, auto_expand_replicas: undefined, refresh_interval: '1s' },
      staging: { number_of_shards: 1, number_of_replicas: undefined, auto_expand_replicas: '0-1', refresh_interval: '5s' },
      prod: { number_of_shards: 1, number_of_replicas: undefined, auto_expand_replicas: '0-1', refresh_interval: '5s' },
    });
  });

  it('the analysis is the same in every environment (it decides what is indexed, not the sizing)', () => {
    for (const environment of ENVIRONMENTS) expect(articlesSettings(environment).analysis).toEqual(articlesAnalysis);
  });
});

describe('search-analytics index template', () => {
  it('creates data streams for search-analytics-* with @timestamp mapped as a date', () => {
    const template = searchAnalyticsTemplate('prod');
    expect(template).toMatchObject({ name: 'search-analytics', index_patterns: ['search-analytics-*'], data_stream: {}, priority: 200 });
    expect(template.template?.mappings?.dynamic).toBe('strict');
    expect(template.template?.mappings?.properties?.['@timestamp']).toEqual({ type: 'date' });
    expect(elasticsearchAssets('dev').indexTemplates).toEqual([searchAnalyticsTemplate('dev')]);
  });

  it('records the query, its normalized form, results, click, user, session and latency', () => {
    const properties = searchAnalyticsTemplate('dev').template?.mappings?.properties ?? {};
    expect(Object.keys(properties).sort()).toEqual(
      ['@timestamp', 'clicked_result', 'event_type', 'latency_ms', 'query', 'results_count', 'search_id', 'search_type', 'session_id', 'user_id'].sort(),
    );
    expect((properties.query as estypes.MappingTextProperty).fields?.normalized).toEqual({ type: 'keyword', normalizer: 'facet_keyword', ignore_above: 512 });
    expect(properties.latency_ms).toEqual({ type: 'integer', meta: { unit: 'ms' } });
  });

  it('every analysis component the template names is defined in the template', () => {
    const template = searchAnalyticsTemplate('prod').template;
    expect(danglingAnalysisReferences(template?.settings?.analysis ?? {}, template?.mappings ?? {})).toEqual([]);
  });

  it('keeps events 7 days in development, 30 in staging and 90 in production', () => {
    const lifecycle = Object.fromEntries(ENVIRONMENTS.map((environment) => [environment, searchAnalyticsTemplate(environment).template?.lifecycle?.data_retention]));
    expect(lifecycle).toEqual({ dev: '7d', ephemeral: '7d', staging: '30d', prod: '90d' });
    expect(searchAnalyticsTemplate('prod').template?.settings).toMatchObject({ number_of_shards: 1, auto_expand_replicas: '0-1' });
    expect(searchAnalyticsTemplate('dev').template?.settings).toMatchObject({ number_of_shards: 1, number_of_replicas: 0 });
  });

  it('the platform role may create the data stream and append to it, and use the articles alias and index', () => {
    const roles = parse(readFileSync(join(elasticsearch.directory, 'config', 'roles.yml'), 'utf8')) as {
      allixios_app: { indices: { names: string[]; privileges: string[] }[] };
    };
    const grantsFor = (name: string): string[] =>
      roles.allixios_app.indices.filter((entry) => entry.names.some((pattern) => new RegExp(`^${pattern.replaceAll('*', '.*')}$`).test(name))).flatMap((entry) => entry.privileges);
    const dataStream = SEARCH_ANALYTICS_PATTERN.replace('*', 'default');
    expect(grantsFor(dataStream)).toEqual(expect.arrayContaining(['create_doc', 'auto_configure']));
    expect(grantsFor(articlesIndex.alias)).toEqual(expect.arrayContaining(['read', 'write']));
    expect(grantsFor(articlesIndex.index)).toEqual(expect.arrayContaining(['read', 'write']));
  });
});

describe('classifyMappingChange', () => {
  const base: estypes.MappingTypeMapping = {
    dynamic: 'strict',
    properties: {
      title: { type: 'text', analyzer: 'english_text', fields: { keyword: { type: 'keyword', ignore_above: 300 } } },
      status: { type: 'keyword' },
      author: { properties: { id: { type: 'keyword' }, name: { type: 'text' } } },
      tags: { type: 'nested', properties: { slug: { type: 'keyword' } } },
    },
  };
  const withProperties = (properties: Record<string, estypes.MappingProperty>): estypes.MappingTypeMapping => ({ ...base, properties: { ...base.properties, ...properties } });

  it('the same mapping is no change, also after a JSON round trip', () => {
    expect(classifyMappingChange(base, base)).toEqual({ kind: 'none', details: [] });
    expect(classifyMappingChange(roundTrip(base), base)).toEqual({ kind: 'none', details: [] });
    expect(classifyMappingChange(roundTrip(articlesIndex.mappings), articlesIndex.mappings)).toEqual({ kind: 'none', details: [] });
  });

  it('a new field is additive', () => {
    expect(classifyMappingChange(base, withProperties({ excerpt: { type: 'text' } }))).toEqual({ kind: 'additive', details: ['excerpt: new text field'] });
  });

  it('a new field inside an object and a new multi-field are additive, the latter needing an update_by_query', () => {
    const desired = withProperties({
      author: { properties: { id: { type: 'keyword' }, name: { type: 'text' }, slug: { type: 'keyword' } } },
      status: { type: 'keyword', fields: { text: { type: 'text' } } },
    });
    expect(classifyMappingChange(base, desired)).toEqual({
      kind: 'additive',
      details: ['author.slug: new keyword field', 'status.text: new multi-field (text); documents indexed before it need an _update_by_query to populate it'],
    });
  });

  it('a changed type is breaking', () => {
    expect(classifyMappingChange(base, withProperties({ status: { type: 'text' } }))).toEqual({ kind: 'breaking', details: ['status: type changed from keyword to text'] });
  });

  it('object to nested is a changed type', () => {
    const desired = withProperties({ author: { type: 'nested', properties: { id: { type: 'keyword' }, name: { type: 'text' } } } });
    expect(classifyMappingChange(base, desired)).toEqual({ kind: 'breaking', details: ['author: type changed from object to nested'] });
  });

  it('a changed analyzer is breaking', () => {
    const desired = withProperties({ title: { type: 'text', analyzer: 'standard', fields: { keyword: { type: 'keyword', ignore_above: 300 } } } });
    expect(classifyMappingChange(base, desired)).toEqual({ kind: 'breaking', details: ['title: analyzer changed from "english_text" to "standard"'] });
  });

  it('a removed field and a removed multi-field are breaking', () => {
    const { status: _removed, ...rest } = base.properties ?? {};
    void _removed;
    expect(classifyMappingChange(base, { ...base, properties: rest })).toEqual({
      kind: 'breaking',
      details: ['status: field removed (Elasticsearch cannot drop a mapped field; the next index version leaves it out)'],
    });
    const withoutMultiField = withProperties({ title: { type: 'text', analyzer: 'english_text' } });
    expect(classifyMappingChange(base, withoutMultiField)).toMatchObject({ kind: 'breaking', details: [expect.stringMatching(/^title\.keyword: multi-field removed/)] });
  });

  it('an updatable parameter (search_analyzer, ignore_above) is additive, a non-updatable one (index) breaking', () => {
    const updatable = withProperties({
      title: { type: 'text', analyzer: 'english_text', search_analyzer: 'standard', fields: { keyword: { type: 'keyword', ignore_above: 512 } } },
    });
    expect(classifyMappingChange(base, updatable)).toEqual({
      kind: 'additive',
      details: ['title: search_analyzer changed from (unset) to "standard" (updatable in place)', 'title.keyword: ignore_above changed from 300 to 512 (updatable in place)'],
    });
    expect(classifyMappingChange(base, withProperties({ status: { type: 'keyword', index: false } })).kind).toBe('breaking');
  });

  it('breaking wins over additive and both are reported', () => {
    const desired = withProperties({ status: { type: 'text' }, excerpt: { type: 'text' } });
    expect(classifyMappingChange(base, desired)).toEqual({ kind: 'breaking', details: ['status: type changed from keyword to text', 'excerpt: new text field'] });
  });

  it('root settings: dynamic is updatable (and false equals "false"), _source is not', () => {
    expect(classifyMappingChange({ ...base, dynamic: 'false' as unknown as boolean }, { ...base, dynamic: false })).toEqual({ kind: 'none', details: [] });
    expect(classifyMappingChange(base, { ...base, dynamic: true }).kind).toBe('additive');
    expect(classifyMappingChange(base, { ...base, _source: { enabled: false } })).toEqual({
      kind: 'breaking',
      details: ['(root): _source changed from (unset) to {"enabled":false}'],
    });
  });
});

describe('index names', () => {
  it('nextIndexName puts the version after the alias', () => {
    expect(nextIndexName('articles', 1)).toBe('articles_v1');
    expect(nextIndexName('articles', 12)).toBe('articles_v12');
  });

  it('nextIndexName refuses a version that is not a positive integer and an alias Elasticsearch would not take', () => {
    expect(() => nextIndexName('articles', 0)).toThrow('index version of articles: expected a positive integer, got 0');
    expect(() => nextIndexName('articles', 1.5)).toThrow(/positive integer/);
    expect(() => nextIndexName('Articles', 1)).toThrow(/got "Articles"/);
  });

  it('parseIndexVersion reads back what nextIndexName writes, and nothing else', () => {
    expect(parseIndexVersion('articles', nextIndexName('articles', 7))).toBe(7);
    expect(parseIndexVersion('articles', 'articles')).toBeUndefined();
    expect(parseIndexVersion('articles', 'articles_v01')).toBeUndefined();
    expect(parseIndexVersion('articles', 'articles_v2_old')).toBeUndefined();
    expect(parseIndexVersion('articles', 'drafts_v2')).toBeUndefined();
  });
});

describe('on a real Elasticsearch cluster', () => {
  const suffix = (): string => randomBytes(4).toString('hex');

  it.skipIf(!ELASTICSEARCH_URL)('creates the articles index, analyzes with the autocomplete analyzer and deletes it (needs ELASTICSEARCH_URL)', async () => {
    const client = new Client({ node: ELASTICSEARCH_URL as string });
    // A throwaway name outside the articles alias, so the platform's index is never touched.
    const index = `allixios-assets-test-articles-${suffix()}`;
    try {
      await client.indices.create({ index, settings: articlesIndex.settings('ephemeral'), mappings: articlesIndex.mappings });

      const autocomplete = await client.indices.analyze({ index, analyzer: ARTICLE_ANALYZERS.autocompleteIndex, text: 'Café Searching' });
      expect(autocomplete.tokens?.map((token) => token.token)).toEqual(['ca', 'caf', 'cafe', 'se', 'sea', 'sear', 'searc', 'search', 'searchi', 'searchin', 'searching']);
      const english = await client.indices.analyze({ index, analyzer: ARTICLE_ANALYZERS.english, text: "The runner's running" });
      expect(english.tokens?.map((token) => token.token)).toEqual(['runner', 'run']);

      // The live mapping, as the adapter will read it, classifies as unchanged.
      const live = await client.indices.getMapping({ index });
      expect(classifyMappingChange(live[index]!.mappings, articlesIndex.mappings)).toEqual({ kind: 'none', details: [] });

      await client.index({ index, id: 'a1', document: { id: 'a1', title: 'Searching for sourdough', status: 'published' }, refresh: true });
      const hits = await client.search({ index, query: { match: { 'title.autocomplete': { query: 'sour', operator: 'and' } } } });
      expect(hits.hits.hits.map((hit) => hit._id)).toEqual(['a1']);
      // dynamic: strict refuses a field the mapping does not define.
      await expect(client.index({ index, document: { id: 'a2', subtitle: 'not mapped' } })).rejects.toSatisfy(
        (error: unknown) => error instanceof errors.ResponseError && JSON.stringify(error.body).includes('strict_dynamic_mapping_exception'),
      );
    } finally {
      await client.indices.delete({ index, ignore_unavailable: true });
      await client.close();
    }
  });

  it.skipIf(!ELASTICSEARCH_URL)('creates a search-analytics data stream from the template on the first event (needs ELASTICSEARCH_URL)', async () => {
    const client = new Client({ node: ELASTICSEARCH_URL as string });
    // The template under a throwaway name and pattern, so the live template is never replaced.
    const id = suffix();
    const pattern = `allixios-assets-test-analytics-${id}-*`;
    const dataStream = pattern.replace('*', 'default');
    const template = { ...searchAnalyticsTemplate('ephemeral'), name: `allixios-assets-test-analytics-${id}`, index_patterns: [pattern] };
    try {
      await client.indices.putIndexTemplate(template);
      await client.index({
        index: dataStream,
        op_type: 'create',
        document: { '@timestamp': new Date().toISOString(), event_type: 'search', search_id: 's1', search_type: 'full_text', query: 'Café', results_count: 3, latency_ms: 12 },
        refresh: true,
      });
      const streams = await client.indices.getDataStream({ name: dataStream });
      expect(streams.data_streams.map((stream) => stream.name)).toEqual([dataStream]);
      const top = await client.search({ index: dataStream, size: 0, aggs: { queries: { terms: { field: 'query.normalized' } } } });
      expect(JSON.stringify(top.aggregations)).toContain('"key":"cafe"');
    } finally {
      await client.indices.deleteDataStream({ name: dataStream }).catch(() => undefined);
      await client.indices.deleteIndexTemplate({ name: template.name }).catch(() => undefined);
      await client.close();
    }
  });
});
