-- allixios:no-transaction
-- Full-text search reads the postings of published articles apart from those of the others.
--
-- search_articles() runs as the owner and filters by the caller's claim after the GIN index has
-- found the matches: with one index over every article, a search for a word found only in hidden
-- drafts read their postings, which EXPLAIN (ANALYZE, BUFFERS) of the call counts (a red-team
-- pass spelled out words of other authors' drafts). With an index per side, a visitor's search
-- reads the published articles' index only; an author's own drafts are found through the author
-- index; only the staff, who see everything, read the index of unpublished articles
-- (functions/R__article_search.sql).
--
-- Built CONCURRENTLY (articles is live by now), hence no transaction; each step converges when
-- run again after a failure (a failed CONCURRENTLY build leaves an INVALID index, dropped first).
DROP INDEX CONCURRENTLY IF EXISTS articles_published_search_idx;

CREATE INDEX CONCURRENTLY IF NOT EXISTS articles_published_search_idx
  ON articles USING gin (search_vector) WHERE status = 'published';

COMMENT ON INDEX articles_published_search_idx IS
  'full-text search of published articles: status = ''published'' AND search_vector @@ $query (search_articles)';

DROP INDEX CONCURRENTLY IF EXISTS articles_unpublished_search_idx;

CREATE INDEX CONCURRENTLY IF NOT EXISTS articles_unpublished_search_idx
  ON articles USING gin (search_vector) WHERE status <> 'published';

COMMENT ON INDEX articles_unpublished_search_idx IS
  'full-text search of unpublished articles, for the staff: status <> ''published'' AND search_vector @@ $query (search_articles)';

DROP INDEX CONCURRENTLY IF EXISTS articles_search_vector_idx;
