/**
 * Analysis components shared by the platform's indices. Typed with the client's definitions
 * (estypes), so a misspelled parameter is a compile error rather than a 400 at bootstrap.
 */
import type { estypes } from '@elastic/elasticsearch';

/**
 * Facet values (tag names, category and author names as keywords): compared and aggregated
 * without regard to case or accents, so "Café" and "cafe" are one bucket. Both filters are on
 * Elasticsearch's list of filters a normalizer may use.
 */
export const FACET_NORMALIZER = 'facet_keyword';

export const facetNormalizer: estypes.AnalysisCustomNormalizer = {
  type: 'custom',
  char_filter: [],
  filter: ['lowercase', 'asciifolding'],
};
