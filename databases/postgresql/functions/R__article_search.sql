-- Full-text search over the articles the caller may see (SECURITY INVOKER: row-level security
-- decides, so readers find published articles, authors also their own drafts, staff all).
-- websearch_to_tsquery accepts what people type ("quoted phrases", or, -excluded) without
-- syntax errors. Ranked by ts_rank, where the weights of search_vector put title matches above
-- excerpt matches above body matches; newest first among equals.
--
-- The headline is computed for the returned page only (ts_headline re-parses the whole text).
-- It marks matches with <mark>...</mark> around text taken as is from the article: the
-- application escapes it before rendering it as HTML.
CREATE OR REPLACE FUNCTION search_articles(query text, max_results integer DEFAULT 20)
RETURNS TABLE (id uuid, slug text, title text, status text, published_at timestamptz, rank real, headline text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
  WITH search AS (
    SELECT websearch_to_tsquery('pg_catalog.english'::regconfig, search_articles.query) AS tsquery
  ),
  ranked AS (
    SELECT a.id, a.slug, a.title, a.status, a.published_at, a.excerpt, a.body,
           ts_rank(a.search_vector, s.tsquery) AS rank, s.tsquery
      FROM public.articles a CROSS JOIN search s
     WHERE a.search_vector @@ s.tsquery
     ORDER BY rank DESC, a.published_at DESC NULLS LAST, a.id
     LIMIT greatest(1, least(search_articles.max_results, 100))
  )
  SELECT r.id, r.slug, r.title, r.status, r.published_at, r.rank,
         ts_headline('pg_catalog.english'::regconfig,
                     concat_ws(' ', r.title, r.excerpt, r.body), r.tsquery,
                     'StartSel=<mark>, StopSel=</mark>, MaxWords=35, MinWords=15, MaxFragments=2')
    FROM ranked r
   ORDER BY r.rank DESC, r.published_at DESC NULLS LAST, r.id
$$;
