/**
 * Search analytics: one event per search the platform runs and per result a user clicks, in a
 * data stream created on the first event from this index template.
 *
 * A data stream rather than a plain index: events are append-only and time-stamped, which is what
 * data streams are for (rollover and retention handled by Elasticsearch), and it is what the
 * platform's role allows: `create_doc` (append, never overwrite) and `auto_configure` (create the
 * stream from this template on the first write) on `search-analytics*` (config/roles.yml).
 * Because nothing can be updated, a click is its own event pointing at its search (`search_id`)
 * instead of a field set later on the search event.
 *
 * The platform writes to `search-analytics-<namespace>`, e.g. `search-analytics-default`.
 */
import type { estypes } from '@elastic/elasticsearch';
import type { Environment } from '../../engine.ts';
import { FACET_NORMALIZER, facetNormalizer } from './analysis.ts';
import { replicaSettings } from './articles.ts';

export const SEARCH_ANALYTICS_TEMPLATE = 'search-analytics';
export const SEARCH_ANALYTICS_PATTERN = 'search-analytics-*';

/** What one event records. */
export const SEARCH_EVENT_TYPES = ['search', 'click'] as const;

export const searchAnalyticsMappings: estypes.MappingTypeMapping = {
  dynamic: 'strict',
  properties: {
    // Required by data streams; the event time as the platform saw it.
    '@timestamp': { type: 'date' },
    // search | click (SEARCH_EVENT_TYPES).
    event_type: { type: 'keyword' },
    // Generated per search; a click carries the id of the search it came from.
    search_id: { type: 'keyword' },
    // full_text (the search page) or autocomplete (the search box's suggestions), so typeahead
    // keystrokes do not drown the searches people actually ran.
    search_type: { type: 'keyword' },
    query: {
      type: 'text',
      fields: {
        // "Top queries" aggregate on this: "Café", "cafe" and "CAFE" are one query.
        normalized: { type: 'keyword', normalizer: FACET_NORMALIZER, ignore_above: 512 },
      },
    },
    results_count: { type: 'integer' },
    clicked_result: {
      properties: {
        article_id: { type: 'keyword' },
        // 1-based rank of the clicked result in the list the user saw.
        position: { type: 'integer' },
      },
    },
    user_id: { type: 'keyword' },
    session_id: { type: 'keyword' },
    latency_ms: { type: 'integer', meta: { unit: 'ms' } },
  },
};

interface SearchAnalyticsSizing {
  replicas: number | `${number}-${number}`;
  refreshInterval: estypes.Duration;
  /** How long events are kept (data stream lifecycle); older backing indices are deleted. */
  retention: estypes.Duration;
}

/**
 * Replicas as for the articles index (auto-expand where a second node may appear). Refresh is
 * slow outside development: the events are read by dashboards, not by the user who produced them.
 * Retention: long enough to tune search against recent behaviour; the long-term record of user
 * behaviour is ClickHouse's.
 */
export const SEARCH_ANALYTICS_SIZING: Record<Environment, SearchAnalyticsSizing> = {
  dev: { replicas: 0, refreshInterval: '1s', retention: '7d' },
  ephemeral: { replicas: 0, refreshInterval: '1s', retention: '7d' },
  staging: { replicas: '0-1', refreshInterval: '30s', retention: '30d' },
  prod: { replicas: '0-1', refreshInterval: '30s', retention: '90d' },
};

/** The `PUT _index_template/search-analytics` request for one environment. */
export function searchAnalyticsTemplate(environment: Environment): estypes.IndicesPutIndexTemplateRequest {
  const sizing = SEARCH_ANALYTICS_SIZING[environment];
  const settings: estypes.IndicesIndexSettingsKeys = {
    // One shard per backing index: a rollover starts a new one, so volume is spread over time.
    number_of_shards: 1,
    ...replicaSettings(sizing.replicas),
    refresh_interval: sizing.refreshInterval,
    analysis: { normalizer: { [FACET_NORMALIZER]: facetNormalizer } },
  };
  return {
    name: SEARCH_ANALYTICS_TEMPLATE,
    index_patterns: [SEARCH_ANALYTICS_PATTERN],
    data_stream: {},
    // The pattern overlaps none of Elasticsearch's built-in templates (logs-*-*, metrics-*-*,
    // ...), so the value only has to beat a template someone adds later by hand.
    priority: 200,
    // Bumped with every change, so `GET _index_template` shows which definition is live.
    version: 1,
    _meta: { managed_by: 'allixios-bootstrap', description: 'search and click events of the platform' },
    template: {
      settings,
      mappings: searchAnalyticsMappings,
      lifecycle: { data_retention: sizing.retention },
    },
  };
}
