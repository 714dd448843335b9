/**
 * The articles index: published and editorial article search, facets (category, tags, author)
 * and title autocomplete. Documents are written by the platform's indexer from PostgreSQL
 * (databases/postgresql/schemas/V0004__content.sql), one per article, `_id` = the article's id.
 *
 * The mapping is strict: a field the indexer sends that is not mapped here rejects the document,
 * so a renamed column cannot silently create a second, unanalysed field.
 */
import type { estypes } from '@elastic/elasticsearch';
import type { Environment } from '../../engine.ts';
import { FACET_NORMALIZER, facetNormalizer } from './analysis.ts';

/** Analyzer names, referenced by the mapping below and by queries (`analyzer` in a match). */
export const ARTICLE_ANALYZERS = {
  /** Stemmed English for title, excerpt and body: "running" finds "runs". */
  english: 'english_text',
  /** Index side of title autocomplete: every word's prefixes of 2 to 20 characters. */
  autocompleteIndex: 'autocomplete_index',
  /** Search side of title autocomplete: the typed words, folded like the index side. */
  autocompleteSearch: 'autocomplete_search',
  /** People's names: folded, never stemmed ("Rogers" must not become "roger"). */
  personName: 'person_name',
} as const;

/** Longest indexed prefix. A longer typed word is truncated to it at search time. */
const AUTOCOMPLETE_MAX_GRAM = 20;

/**
 * Analysis settings, fixed at index creation: changing any of them requires the next version of
 * the index (VersionedIndexDefinition.version), even when the mapping is unchanged.
 */
export const articlesAnalysis: estypes.IndicesIndexSettingsAnalysis = {
  tokenizer: {
    // letter and digit only: "e-mail" and "e.mail" both index as "e" and "mail" prefixes, and
    // punctuation never becomes part of a prefix.
    autocomplete_edge_ngram: {
      type: 'edge_ngram',
      min_gram: 2,
      max_gram: AUTOCOMPLETE_MAX_GRAM,
      token_chars: ['letter', 'digit'],
    },
  },
  filter: {
    // The components of Elasticsearch's built-in `english` analyzer, rebuilt as a custom
    // analyzer so asciifolding can be added and each step is visible.
    english_possessive_stemmer: { type: 'stemmer', language: 'possessive_english' },
    english_stop: { type: 'stop', stopwords: '_english_' },
    english_stemmer: { type: 'stemmer', language: 'english' },
    // Applied at search time to match AUTOCOMPLETE_MAX_GRAM: without it a typed word longer than
    // the longest indexed prefix would match nothing.
    autocomplete_truncate: { type: 'truncate', length: AUTOCOMPLETE_MAX_GRAM },
  },
  analyzer: {
    [ARTICLE_ANALYZERS.english]: {
      type: 'custom',
      tokenizer: 'standard',
      // Order as in the built-in english analyzer (possessive before lowercase, stop before the
      // stemmer), with asciifolding after lowercase so "café" and "cafe" meet.
      filter: ['english_possessive_stemmer', 'lowercase', 'asciifolding', 'english_stop', 'english_stemmer'],
    },
    [ARTICLE_ANALYZERS.autocompleteIndex]: {
      type: 'custom',
      tokenizer: 'autocomplete_edge_ngram',
      filter: ['lowercase', 'asciifolding'],
    },
    // The standard tokenizer, as Elastic recommends for the search side of edge n-grams (the
    // typed words as they are, not their prefixes), plus the same folding as the index side:
    // the plain `standard` analyzer lowercases but does not fold, so "Café" typed would miss
    // the indexed "cafe".
    [ARTICLE_ANALYZERS.autocompleteSearch]: {
      type: 'custom',
      tokenizer: 'standard',
      filter: ['lowercase', 'asciifolding', 'autocomplete_truncate'],
    },
    [ARTICLE_ANALYZERS.personName]: {
      type: 'custom',
      tokenizer: 'standard',
      filter: ['lowercase', 'asciifolding'],
    },
  },
  normalizer: {
    [FACET_NORMALIZER]: facetNormalizer,
  },
};

/** A keyword compared and aggregated case- and accent-insensitively. */
function facetKeyword(ignoreAbove: number): estypes.MappingKeywordProperty {
  return { type: 'keyword', normalizer: FACET_NORMALIZER, ignore_above: ignoreAbove };
}

export const articlesMappings: estypes.MappingTypeMapping = {
  dynamic: 'strict',
  properties: {
    // The PostgreSQL uuid, also the document _id; a field so terms queries and aggregations can
    // use it.
    id: { type: 'keyword' },
    slug: { type: 'keyword' },
    title: {
      type: 'text',
      analyzer: ARTICLE_ANALYZERS.english,
      fields: {
        autocomplete: {
          type: 'text',
          analyzer: ARTICLE_ANALYZERS.autocompleteIndex,
          search_analyzer: ARTICLE_ANALYZERS.autocompleteSearch,
        },
        // Sorting by title and exact title matches. 300 = PostgreSQL's limit on a title, so
        // every title is indexed.
        keyword: facetKeyword(300),
      },
    },
    excerpt: { type: 'text', analyzer: ARTICLE_ANALYZERS.english },
    body: { type: 'text', analyzer: ARTICLE_ANALYZERS.english },
    // draft, review, published, archived (articles_status_check): public search filters on it.
    status: { type: 'keyword' },
    category: {
      properties: {
        id: { type: 'keyword' },
        slug: { type: 'keyword' },
        name: { type: 'text', analyzer: ARTICLE_ANALYZERS.english, fields: { keyword: facetKeyword(100) } },
      },
    },
    // Nested, not an object array: a facet needs each tag's slug and name together (terms on
    // slug, then its name for display). An object array would flatten them into two unrelated
    // lists. Costs a hidden document per tag, which a handful of tags per article makes cheap.
    tags: {
      type: 'nested',
      properties: {
        slug: { type: 'keyword' },
        name: facetKeyword(100),
      },
    },
    // One author per article (articles.author_id), so a plain object suffices.
    author: {
      properties: {
        id: { type: 'keyword' },
        name: { type: 'text', analyzer: ARTICLE_ANALYZERS.personName, fields: { keyword: facetKeyword(100) } },
      },
    },
    published_at: { type: 'date' },
    updated_at: { type: 'date' },
    // articles.reading_time_minutes; the unit is in the name, as in PostgreSQL.
    reading_time_minutes: { type: 'integer' },
    // Exact total, for "most read" sorting and display.
    view_count: { type: 'long' },
    // Relevance boost through a rank_feature query; cannot be sorted or aggregated on. Must be
    // strictly positive: the indexer omits it for an article without a score rather than
    // sending 0, which Elasticsearch rejects. A higher popularity scores higher: that is the
    // default (positive_score_impact: true), left out because GET _mapping omits defaults and the
    // bootstrap compares this mapping with what the cluster reports.
    popularity: { type: 'rank_feature' },
  },
};

/** Primary shards, replicas and refresh interval of the articles index per environment. */
interface ArticlesSizing {
  shards: number;
  /**
   * A fixed count, or Elasticsearch's `auto_expand_replicas` range. Staging and production use
   * "0-1": the cluster is one node today (elasticsearch.yml, discovery.type: single-node), where
   * a fixed replica could never be assigned and would leave the index yellow for good; with a
   * second node the replica appears without a settings change.
   */
  replicas: number | `${number}-${number}`;
  refreshInterval: estypes.Duration;
}

/**
 * One primary shard everywhere: the article corpus is far below the tens of gigabytes per shard
 * Elastic sizes shards for, and several shards on one node would only add per-shard overhead and
 * make BM25 statistics differ between shards. When that changes, the shard count is a new
 * version of the index (reindex and alias swap), like any other setting fixed at creation.
 *
 * Refresh: 1 s where people test and develop; 5 s in staging and production, where the periodic
 * popularity and view-count updates arrive in bulk and a publish showing up in search a few
 * seconds later is acceptable.
 */
export const ARTICLES_SIZING: Record<Environment, ArticlesSizing> = {
  dev: { shards: 1, replicas: 0, refreshInterval: '1s' },
  ephemeral: { shards: 1, replicas: 0, refreshInterval: '1s' },
  staging: { shards: 1, replicas: '0-1', refreshInterval: '5s' },
  prod: { shards: 1, replicas: '0-1', refreshInterval: '5s' },
};

/** Replica settings for a sizing: either a fixed count or an auto-expand range, never both. */
export function replicaSettings(replicas: number | string): estypes.IndicesIndexSettingsKeys {
  return typeof replicas === 'number' ? { number_of_replicas: replicas } : { auto_expand_replicas: replicas };
}

export function articlesIndexSettings(environment: Environment): estypes.IndicesIndexSettingsKeys {
  const sizing = ARTICLES_SIZING[environment];
  return {
    number_of_shards: sizing.shards,
    ...replicaSettings(sizing.replicas),
    refresh_interval: sizing.refreshInterval,
    analysis: articlesAnalysis,
  };
}
