-- Full-text search over the articles the application's claim may see: readers find published
-- articles, authors also their own drafts, staff all (article_visible(), the rule of the
-- articles_app_select policy).
--
-- SECURITY DEFINER, run as the owner (allixios_owner, which applies the assets): under
-- allixios_app's row-level security the GIN index could not serve @@, which is not LEAKPROOF,
-- and every search read all articles (schemas/V0009__article_visibility_rule.sql says why).
-- The owner's policy adds no condition, so @@ is an index condition. What each claim may find
-- is the rule of article_visible() (the articles policy), written as three kinds of matches that
-- read nothing the caller may not see: published articles for everyone, an author's own
-- unpublished ones, and the staff's all. It returns only the columns below, reads the claim of
-- the caller's transaction (app_current_role() raises on a malformed one, before any article is
-- read), and its search_path is pinned with pg_temp last. Only allixios_app may call it:
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
  matches AS (
    -- Everyone: published articles, through the index of published articles only
    -- (indexes/V0020): nothing of an unpublished article is read for a visitor's search.
    SELECT a.id, a.slug, a.title, a.status, a.published_at, a.excerpt, a.body, a.search_vector
      FROM public.articles a CROSS JOIN search s
     WHERE a.status = 'published' AND a.search_vector @@ s.tsquery
    UNION ALL
    -- An author: their own unpublished articles, found through the author index. ts_match_vq()
    -- is @@ written as a function, which no index serves: the unpublished index would read other
    -- authors' drafts. The claim's (SELECT ...) are read before any article (a gate of the plan),
    -- so a broken claim fails the same whatever the articles hold.
    SELECT a.id, a.slug, a.title, a.status, a.published_at, a.excerpt, a.body, a.search_vector
      FROM public.articles a CROSS JOIN search s
     WHERE (SELECT public.app_current_role()) = 'author'
       AND a.author_id = (SELECT public.app_current_user_id()) AND a.status <> 'published'
       AND ts_match_vq(a.search_vector, s.tsquery)
    UNION ALL
    -- The staff, who see everything: every unpublished article, through its own index.
    SELECT a.id, a.slug, a.title, a.status, a.published_at, a.excerpt, a.body, a.search_vector
      FROM public.articles a CROSS JOIN search s
     WHERE (SELECT public.app_current_role()) IN ('editor', 'admin')
       AND a.status <> 'published' AND a.search_vector @@ s.tsquery
  ),
  ranked AS (
    SELECT m.id, m.slug, m.title, m.status, m.published_at, m.excerpt, m.body,
           ts_rank(m.search_vector, s.tsquery) AS rank, s.tsquery
      FROM matches m CROSS JOIN search s
     ORDER BY rank DESC, m.published_at DESC NULLS LAST, m.id
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
