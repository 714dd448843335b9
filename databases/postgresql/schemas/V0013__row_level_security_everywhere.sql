-- Every table the application writes has a policy for every command it may run, and no write
-- reaches, by a cascade or a check, a row the writer cannot see. Threat model and matrix:
-- ../README.md ("Threat model"). What changes:
--
--   categories, tags         row-level security: everyone reads; only editors and admins write
--                            (deleting a tag removed the tag links of drafts its deleter cannot
--                            see; any claim could rename or delete categories)
--   media                    row-level security: the uploader, the staff, and anyone who sees an
--                            article or profile showing the file, read it; any signed-in user
--                            uploads; the uploader and the staff describe it; only the staff
--                            delete (a deletion clears the covers of articles the deleter may not
--                            see); covers and avatars only name files their writer can see
--   daily_article_stats      row-level security: an article's author and the staff read; the
--                            analytics job writes with an admin claim
--   articles                 an author deletes only what was never published: not a published
--                            article, nor one unpublished by the staff (published_at is kept)
--   comments                 only the staff delete (a refused deletion named a hidden reply);
--                            a reply answers a comment its writer can see
--
-- Helper functions below follow V0009: a rule is a SQL function the policy inlines, and where a
-- check must look at rows under another table's policy (media from articles, a comment's parent
-- from comments), a SECURITY DEFINER function applies that same rule for the caller's claim.
-- PostgreSQL refuses a policy whose subqueries lead back to its own table ("infinite
-- recursion"), and a function body is not expanded into the policy.

------------------------------------------------------------------------------------------------
-- media
------------------------------------------------------------------------------------------------
-- Whether any article the claim may see uses the file as its cover, or any author profile
-- (public) as its avatar. Runs as the owner to look at articles and profiles as a whole, and
-- filters articles with article_visible(), the articles policy's own rule, for the caller's
-- claim: it answers only about what the caller could find by reading those tables.
CREATE FUNCTION media_shown(media_id uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
  SELECT EXISTS (
           SELECT 1 FROM public.articles a
            WHERE a.cover_media_id = media_shown.media_id
              AND public.article_visible(a.status, a.author_id, (SELECT public.app_current_role()), (SELECT public.app_current_user_id())))
      OR EXISTS (SELECT 1 FROM public.author_profiles p WHERE p.avatar_media_id = media_shown.media_id)
$$;

-- Which files a claim sees: the staff all, a user their own uploads, everyone what is shown.
CREATE FUNCTION media_visible(uploaded_by uuid, media_id uuid, claimed_role text, claimed_user_id uuid)
RETURNS boolean
LANGUAGE sql STABLE
AS $$
  SELECT CASE claimed_role
           WHEN 'editor' THEN true
           WHEN 'admin' THEN true
           ELSE uploaded_by = claimed_user_id OR public.media_shown(media_id)
         END
$$;

-- Whether the caller may name the file as a cover or an avatar: exactly the files it can see.
-- A file it cannot see and one that does not exist give the same answer, before any foreign
-- key check could tell them apart.
CREATE FUNCTION media_usable(media_id uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
  SELECT coalesce((
    SELECT public.media_visible(m.uploaded_by, m.id, (SELECT public.app_current_role()), (SELECT public.app_current_user_id()))
      FROM public.media m WHERE m.id = media_usable.media_id), false)
$$;

ALTER TABLE media ENABLE ROW LEVEL SECURITY;
ALTER TABLE media FORCE ROW LEVEL SECURITY;

CREATE POLICY media_app_select ON media FOR SELECT TO allixios_app
USING (media_visible(uploaded_by, id, (SELECT app_current_role()), (SELECT app_current_user_id())));

-- uploaded_by is the claim's user (its DEFAULT; the column is not the client's to write).
CREATE POLICY media_app_insert ON media FOR INSERT TO allixios_app
WITH CHECK ((SELECT app_current_role()) <> 'anonymous' AND uploaded_by = (SELECT app_current_user_id()));

-- (Without WITH CHECK, PostgreSQL checks the new row with USING too.)
CREATE POLICY media_app_update ON media FOR UPDATE TO allixios_app
USING (
  CASE (SELECT app_current_role())
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'anonymous' THEN false
    ELSE uploaded_by = (SELECT app_current_user_id())
  END
);

CREATE POLICY media_app_delete ON media FOR DELETE TO allixios_app
USING ((SELECT app_is_staff()));

------------------------------------------------------------------------------------------------
-- categories and tags: public vocabulary, curated by the staff
------------------------------------------------------------------------------------------------
ALTER TABLE categories ENABLE ROW LEVEL SECURITY;
ALTER TABLE categories FORCE ROW LEVEL SECURITY;
ALTER TABLE tags ENABLE ROW LEVEL SECURITY;
ALTER TABLE tags FORCE ROW LEVEL SECURITY;

-- Everyone reads them; the role is read so that a broken claim fails here as everywhere.
CREATE POLICY categories_app_select ON categories FOR SELECT TO allixios_app USING ((SELECT app_current_role()) IS NOT NULL);
CREATE POLICY categories_app_insert ON categories FOR INSERT TO allixios_app WITH CHECK ((SELECT app_is_staff()));
CREATE POLICY categories_app_update ON categories FOR UPDATE TO allixios_app USING ((SELECT app_is_staff())) WITH CHECK ((SELECT app_is_staff()));
CREATE POLICY categories_app_delete ON categories FOR DELETE TO allixios_app USING ((SELECT app_is_staff()));

-- Authors attach existing tags to their articles (article_tags); naming a tag is an editorial
-- act, and a tag made for a secret draft would show its subject to everyone.
CREATE POLICY tags_app_select ON tags FOR SELECT TO allixios_app USING ((SELECT app_current_role()) IS NOT NULL);
CREATE POLICY tags_app_insert ON tags FOR INSERT TO allixios_app WITH CHECK ((SELECT app_is_staff()));
CREATE POLICY tags_app_update ON tags FOR UPDATE TO allixios_app USING ((SELECT app_is_staff())) WITH CHECK ((SELECT app_is_staff()));
CREATE POLICY tags_app_delete ON tags FOR DELETE TO allixios_app USING ((SELECT app_is_staff()));

------------------------------------------------------------------------------------------------
-- daily_article_stats
------------------------------------------------------------------------------------------------
ALTER TABLE daily_article_stats ENABLE ROW LEVEL SECURITY;
ALTER TABLE daily_article_stats FORCE ROW LEVEL SECURITY;

-- The staff see all statistics; an author those of their own articles. A correlated EXISTS (a
-- primary-key probe of articles per row) rather than IN (SELECT ...): with IN, the planner
-- misjudged how many rows the policy keeps and read the whole table instead of its primary key
-- for the author's report (found by test/bench-postgresql-plans.test.ts).
CREATE POLICY daily_article_stats_app_select ON daily_article_stats FOR SELECT TO allixios_app
USING (
  CASE (SELECT app_current_role())
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'author' THEN EXISTS (SELECT 1 FROM articles a WHERE a.id = daily_article_stats.article_id AND a.author_id = (SELECT app_current_user_id()))
    ELSE false
  END
);

-- The analytics job upserts with an admin claim; no user writes statistics.
CREATE POLICY daily_article_stats_app_insert ON daily_article_stats FOR INSERT TO allixios_app
WITH CHECK ((SELECT app_current_role()) = 'admin');
CREATE POLICY daily_article_stats_app_update ON daily_article_stats FOR UPDATE TO allixios_app
USING ((SELECT app_current_role()) = 'admin') WITH CHECK ((SELECT app_current_role()) = 'admin');

------------------------------------------------------------------------------------------------
-- articles: never-published deletions, visible covers
------------------------------------------------------------------------------------------------
-- An author deletes a draft or an article in review that was never published. published_at is
-- set on publication and kept when the staff unpublish (R__article_publishing.sql lets no
-- author clear it), so "unpublish, then delete" is closed: unpublishing is the staff's already.
ALTER POLICY articles_app_delete ON articles
USING (
  CASE (SELECT app_current_role())
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'author' THEN author_id = (SELECT app_current_user_id()) AND status IN ('draft', 'review') AND published_at IS NULL
    ELSE false
  END
);

ALTER POLICY articles_app_insert ON articles
WITH CHECK (
  CASE (SELECT app_current_role())
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'author' THEN author_id = (SELECT app_current_user_id())
    ELSE false
  END
  AND (cover_media_id IS NULL OR media_usable(cover_media_id))
);

ALTER POLICY articles_app_update ON articles
WITH CHECK (
  CASE (SELECT app_current_role())
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'author' THEN author_id = (SELECT app_current_user_id())
    ELSE false
  END
  AND (cover_media_id IS NULL OR media_usable(cover_media_id))
);

------------------------------------------------------------------------------------------------
-- author_profiles: visible avatars
------------------------------------------------------------------------------------------------
ALTER POLICY author_profiles_app_insert ON author_profiles
WITH CHECK (
  CASE (SELECT app_current_role())
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'anonymous' THEN false
    ELSE user_id = (SELECT app_current_user_id())
  END
  AND (avatar_media_id IS NULL OR media_usable(avatar_media_id))
);

ALTER POLICY author_profiles_app_update ON author_profiles
WITH CHECK (
  CASE (SELECT app_current_role())
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'anonymous' THEN false
    ELSE user_id = (SELECT app_current_user_id())
  END
  AND (avatar_media_id IS NULL OR media_usable(avatar_media_id))
);

------------------------------------------------------------------------------------------------
-- comments: the visibility rule written once, replies to visible comments, staff deletions
------------------------------------------------------------------------------------------------
-- Which comments a claim sees: the staff all; everyone the visible comments of published
-- articles; a user their own in any status. Inlined into the policy (each argument is used
-- once); the articles subquery runs under the caller's articles policy.
CREATE FUNCTION comment_visible(comment_status text, comment_author_id uuid, comment_article_id uuid, claimed_role text, claimed_user_id uuid)
RETURNS boolean
LANGUAGE sql STABLE
AS $$
  SELECT CASE
           WHEN claimed_role IN ('editor', 'admin') THEN true
           ELSE (comment_status = 'visible'
                 AND EXISTS (SELECT 1 FROM public.articles a WHERE a.id = comment_article_id AND a.status = 'published'))
                OR comment_author_id = claimed_user_id
         END
$$;

ALTER POLICY comments_app_select ON comments
USING (comment_visible(status, author_id, article_id, (SELECT app_current_role()), (SELECT app_current_user_id())));

-- Whether the caller sees the comment a reply answers, on that article. A hidden parent and a
-- missing one give the same answer, before the foreign key could tell them apart.
CREATE FUNCTION comment_reply_allowed(parent_id uuid, article_id uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
  SELECT EXISTS (
    SELECT 1 FROM public.comments p
     WHERE p.id = comment_reply_allowed.parent_id AND p.article_id = comment_reply_allowed.article_id
       AND public.comment_visible(p.status, p.author_id, p.article_id, (SELECT public.app_current_role()), (SELECT public.app_current_user_id())))
$$;

-- author_id is the claim's user (its DEFAULT); a comment starts visible, on a published
-- article, answering (if at all) a comment its writer can see.
ALTER POLICY comments_app_insert ON comments
WITH CHECK (
  CASE (SELECT app_current_role())
    WHEN 'anonymous' THEN false
    ELSE
      author_id = (SELECT app_current_user_id())
      AND status = 'visible'
      AND EXISTS (SELECT 1 FROM articles a WHERE a.id = comments.article_id AND a.status = 'published')
      AND (parent_id IS NULL OR comment_reply_allowed(parent_id, article_id))
  END
);

-- Users withdraw their comments (status 'deleted'); deleting one is moderation.
ALTER POLICY comments_app_delete ON comments USING ((SELECT app_is_staff()));

------------------------------------------------------------------------------------------------
-- The migrator and reporting on the new tables, as on the others (V0007)
------------------------------------------------------------------------------------------------
CREATE POLICY media_owner_all ON media FOR ALL TO allixios_owner USING (true) WITH CHECK (true);
CREATE POLICY categories_owner_all ON categories FOR ALL TO allixios_owner USING (true) WITH CHECK (true);
CREATE POLICY tags_owner_all ON tags FOR ALL TO allixios_owner USING (true) WITH CHECK (true);
CREATE POLICY daily_article_stats_owner_all ON daily_article_stats FOR ALL TO allixios_owner USING (true) WITH CHECK (true);

CREATE POLICY media_readonly_select ON media FOR SELECT TO allixios_readonly USING (true);
CREATE POLICY categories_readonly_select ON categories FOR SELECT TO allixios_readonly USING (true);
CREATE POLICY tags_readonly_select ON tags FOR SELECT TO allixios_readonly USING (true);
CREATE POLICY daily_article_stats_readonly_select ON daily_article_stats FOR SELECT TO allixios_readonly USING (true);

-- The definer helpers answer for the application's claim; reporting reads the tables itself.
REVOKE ALL ON FUNCTION media_shown(uuid), media_usable(uuid), comment_reply_allowed(uuid, uuid) FROM PUBLIC, allixios_readonly;
GRANT EXECUTE ON FUNCTION media_shown(uuid), media_usable(uuid), comment_reply_allowed(uuid, uuid) TO allixios_app;
