/**
 * The desired state of the platform's Elasticsearch cluster: the articles index (behind the
 * `articles` alias, versioned) and the search-analytics index template. The bootstrap's
 * Elasticsearch adapter compares it with the cluster and plans with the pure helpers re-exported
 * here; nothing in this module talks to a cluster.
 *
 * Mappings and analysis live in `mappings/`.
 */
import type { estypes } from '@elastic/elasticsearch';
import type { Environment } from '../engine.ts';
import { articlesIndexSettings, articlesMappings } from './mappings/articles.ts';
import { searchAnalyticsTemplate } from './mappings/search-analytics.ts';
import { nextIndexName, type VersionedIndexDefinition } from './versioned-index.ts';

export { classifyMappingChange, nextIndexName, parseIndexVersion, type MappingChange, type MappingChangeKind, type VersionedIndexDefinition } from './versioned-index.ts';
export { ARTICLE_ANALYZERS, ARTICLES_SIZING } from './mappings/articles.ts';
export { SEARCH_ANALYTICS_PATTERN, SEARCH_ANALYTICS_SIZING, SEARCH_ANALYTICS_TEMPLATE, searchAnalyticsTemplate } from './mappings/search-analytics.ts';

const ARTICLES_ALIAS = 'articles';
/** Every version of the articles index (`articles_v<N>`): what a snapshot takes. */
export const ARTICLES_INDEX_PATTERN = `${ARTICLES_ALIAS}_v*`;
/** Bump on any change classifyMappingChange calls breaking, and on any change to the analysis. */
const ARTICLES_VERSION = 1;

export const articlesIndex: VersionedIndexDefinition = {
  alias: ARTICLES_ALIAS,
  version: ARTICLES_VERSION,
  index: nextIndexName(ARTICLES_ALIAS, ARTICLES_VERSION),
  settings: articlesIndexSettings,
  mappings: articlesMappings,
};

/** Everything the bootstrap applies to Elasticsearch, for one environment. */
export interface ElasticsearchAssets {
  indices: VersionedIndexDefinition[];
  indexTemplates: estypes.IndicesPutIndexTemplateRequest[];
}

export function elasticsearchAssets(environment: Environment): ElasticsearchAssets {
  return {
    indices: [articlesIndex],
    indexTemplates: [searchAnalyticsTemplate(environment)],
  };
}
