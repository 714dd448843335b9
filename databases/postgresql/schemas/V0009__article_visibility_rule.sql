-- Which articles a claim may see, written once: the articles_app_select policy (V0007) and
-- search_articles() (functions/R__article_search.sql) both apply this function.
--
-- Why search needs it: under row-level security PostgreSQL may only use a condition as an index
-- condition when its operator is LEAKPROOF, and full-text search's @@ (ts_match_vq) is not. A
-- search run as allixios_app therefore checked the policy on every article before @@ and read
-- the whole table instead of articles_search_vector_idx (found by `npm run bench`: a sequential
-- scan of all articles per search). search_articles() now runs as the owner, whose policy adds
-- no condition, and applies this same rule itself, so it returns exactly what the policy allows.
--
-- A SQL function with a single expression is inlined by the planner: the policy plans as the
-- CASE it was before (partial indexes on status = 'published' still match), and the claim is
-- still read once per statement through the (SELECT ...) initPlans the policy passes in.
CREATE FUNCTION article_visible(article_status text, article_author_id uuid, claimed_role text, claimed_user_id uuid)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT CASE claimed_role
           WHEN 'editor' THEN true
           WHEN 'admin' THEN true
           WHEN 'author' THEN article_status = 'published' OR article_author_id = claimed_user_id
           ELSE article_status = 'published'
         END
$$;
COMMENT ON FUNCTION article_visible(text, uuid, text, uuid) IS
  'whether an article (status, author) is visible to a claim (app_current_role(), app_current_user_id()): the articles_app_select policy and search_articles()';

-- Everyone sees published articles; authors also their own in any status; staff everything.
ALTER POLICY articles_app_select ON articles
USING (article_visible(status, author_id, (SELECT app_current_role()), (SELECT app_current_user_id())));
