-- Full-text search over the articles the application's claim may see: readers find published
-- articles, authors also their own drafts, staff all (article_visible(), the rule of the
-- articles_app_select policy).
--
-- SECURITY DEFINER, run as the owner (allixios_owner, which applies the assets): under
-- allixios_app's row-level security the GIN index could not serve @@, which is not LEAKPROOF,
-- and every search read all articles (schemas/V0009__article_visibility_rule.sql says why).
-- The owner's policy adds no condition, so @@ is an index condition, and the function filters
-- with the same article_visible() the policy uses. It returns only the columns below, reads the
-- claim of the caller's transaction (app_current_role() raises on a malformed one, as the
-- policy does), and its search_path is pinned with pg_temp last. Only allixios_app may call it:
-- the claim is the application's contract; reporting (allixios_readonly) reads articles itself.
-- websearch_to_tsquery accepts what people type ("quoted phrases", or, -excluded) without
-- syntax errors. Ranked by ts_rank, where the weights of search_vector put title matches above
-- excerpt matches above body matches; newest first among equals.
--
-- The headline is computed for the returned page only (ts_headline re-parses the whole text).
-- It marks matches with <mark>...</mark> around text taken as is from the article: the
-- application escapes it before rendering it as HTML.
CREATE OR REPLACE FUNCTION search_articles(query text, max_results integer DEFAULT 20)
RETURNS TABLE (id uuid, slug text, title text, status text, published_at timestamptz, rank real, headline text)
LANGUAGE sql STABLE SECURITY DEFINER
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
       -- The claim in (SELECT ...): read once per call, not once per matching row.
       AND public.article_visible(a.status, a.author_id, (SELECT public.app_current_role()), (SELECT public.app_current_user_id()))
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
REVOKE ALL ON FUNCTION search_articles(text, integer) FROM PUBLIC, allixios_readonly;
GRANT EXECUTE ON FUNCTION search_articles(text, integer) TO allixios_app;
