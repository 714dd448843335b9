-- Policies whose work shows nothing of the rows they hide.
--
-- PostgreSQL evaluates a query's own leakproof conditions (text =, <, >, ...) before the policy,
-- and only the rows those conditions keep reach the policy. So everything a policy does only
-- for a row that reaches it answered "does any row, hidden or not, meet my condition?", one bit
-- per statement, which spells a hidden text out by bisection (a third red-team pass, on
-- PostgreSQL 18):
--
--   - the claim was read through (SELECT app_current_role()) initPlans, which EXPLAIN ANALYZE
--     shows as "never executed" when no row reached the policy, and which raised 22023 on a
--     broken claim only then: an anonymous visitor spelled out the body of a secret draft;
--   - comments, revisions and media checked another table per row (an EXISTS, media_shown()),
--     whose loops and buffers EXPLAIN (ANALYZE, BUFFERS) counts.
--
-- Now:
--
--   - policies read the claim through app_policy_role() / app_policy_user_id(), SQL expressions
--     the planner inlines into each row's check: no initPlan, nothing "never executed", and they
--     never raise. A claim that is malformed, contradictory or not made in this transaction is
--     the claim 'none', which every policy refuses everything (not even published articles).
--     app_claim() still raises on a bad claim, at once: that is where the platform learns of it.
--   - what a policy needs from another table is kept on the row itself, by the system, as a
--     column no client writes: comments.on_published_article, article_revisions.article_author_id,
--     media.public_use. Triggers (SECURITY DEFINER, below) keep them current.
--   - media: a file is seen by its uploader, by the staff, and by everyone once it is shown
--     publicly (the cover of a published article, or an avatar). A cover that an editor set on
--     an author's draft from the editor's own upload is no longer the author's to read until it
--     is published: "a cover of an article they see" could only be checked per row from articles.
--   - the unique B-trees over hidden text go: an index scan, or an index-ordered scan (ORDER BY
--     lower(email)), counts in EXPLAIN ANALYZE the hidden rows between two values. Storage keys
--     (random) need no uniqueness and get a hash index for lookups; e-mail addresses stay unique
--     through app_private.user_emails, which no platform role can reach (as V0017 did for slugs).
--   - no planner statistics of mime types either, nor of users' roles and statuses.
--
-- What EXPLAIN ANALYZE still counts: the rows of article_tags and daily_article_stats that reach
-- their policy's look at articles (ids and numbers, no text), and everything about rows whose
-- visibility does not depend on another table (README: Threat model, "Out of scope").

------------------------------------------------------------------------------------------------
-- The claim, as policies read it
------------------------------------------------------------------------------------------------
CREATE FUNCTION app_policy_role() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE
  WHEN coalesce(current_setting('app.user_role', true), '') IN ('', 'anonymous')
       AND coalesce(current_setting('app.user_id', true), '') = ''
       AND (coalesce(current_setting('app.user_role', true), '') = ''
            OR current_setting('app.claimed_in', true) IS NOT DISTINCT FROM public.app_transaction_stamp())
    THEN 'anonymous'
  WHEN current_setting('app.claimed_in', true) IS DISTINCT FROM public.app_transaction_stamp() THEN 'none'
  WHEN current_setting('app.user_role', true) IN ('reader', 'author', 'editor', 'admin')
       AND current_setting('app.user_id', true) ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
    THEN current_setting('app.user_role', true)
  ELSE 'none'
END;
COMMENT ON FUNCTION app_policy_role() IS
  'the role a policy judges by: app_current_role() inlined and failing closed (''none'') instead of raising';

CREATE FUNCTION app_policy_user_id() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE WHEN public.app_policy_role() IN ('reader', 'author', 'editor', 'admin') THEN current_setting('app.user_id', true)::uuid END;
COMMENT ON FUNCTION app_policy_user_id() IS
  'the user a policy judges by: app_current_user_id() inlined, NULL unless the claim holds';

-- Article visibility, failing closed: a role other than the platform's five sees nothing.
CREATE OR REPLACE FUNCTION article_visible(article_status text, article_author_id uuid, claimed_role text, claimed_user_id uuid)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT CASE claimed_role
           WHEN 'editor' THEN true
           WHEN 'admin' THEN true
           WHEN 'author' THEN article_status = 'published' OR article_author_id = claimed_user_id
           WHEN 'reader' THEN article_status = 'published'
           WHEN 'anonymous' THEN article_status = 'published'
           ELSE false
         END
$$;

------------------------------------------------------------------------------------------------
-- What policies need from other tables, kept on the row
------------------------------------------------------------------------------------------------
ALTER TABLE comments ADD COLUMN on_published_article boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN comments.on_published_article IS 'whether the comment''s article is published; kept by the system (V0019)';
UPDATE comments c SET on_published_article = true FROM articles a WHERE a.id = c.article_id AND a.status = 'published';

ALTER TABLE article_revisions ADD COLUMN article_author_id uuid;
COMMENT ON COLUMN article_revisions.article_author_id IS 'the author of the revision''s article; kept by the system (V0019)';
UPDATE article_revisions r SET article_author_id = a.author_id FROM articles a WHERE a.id = r.article_id;
ALTER TABLE article_revisions ALTER COLUMN article_author_id SET NOT NULL;

ALTER TABLE media ADD COLUMN public_use boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN media.public_use IS 'the cover of a published article, or an avatar: shown to everyone; kept by the system (V0019)';
UPDATE media m SET public_use = true
 WHERE EXISTS (SELECT 1 FROM articles a WHERE a.cover_media_id = m.id AND a.status = 'published')
    OR EXISTS (SELECT 1 FROM author_profiles p WHERE p.avatar_media_id = m.id);

-- A comment starts on its article's state; articles tell their comments when it changes.
CREATE FUNCTION comments_fill_on_published_article() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  NEW.on_published_article := EXISTS (SELECT 1 FROM public.articles a WHERE a.id = NEW.article_id AND a.status = 'published');
  RETURN NEW;
END;
$$;
CREATE TRIGGER comments_fill_on_published_article
  BEFORE INSERT ON comments FOR EACH ROW EXECUTE FUNCTION comments_fill_on_published_article();

-- A revision belongs to its article's author (the capture trigger writes it as the system).
CREATE FUNCTION article_revisions_fill_author() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  NEW.article_author_id := (SELECT a.author_id FROM public.articles a WHERE a.id = NEW.article_id);
  RETURN NEW;
END;
$$;
CREATE TRIGGER article_revisions_fill_author
  BEFORE INSERT ON article_revisions FOR EACH ROW EXECUTE FUNCTION article_revisions_fill_author();

-- Whether each file is shown publicly, recomputed for the files an article or a profile names.
CREATE FUNCTION media_refresh_public_use(media_ids uuid[]) RETURNS void
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
  UPDATE public.media m
     SET public_use = shown.public_use
    FROM (SELECT candidate.id,
                 EXISTS (SELECT 1 FROM public.articles a WHERE a.cover_media_id = candidate.id AND a.status = 'published')
                 OR EXISTS (SELECT 1 FROM public.author_profiles p WHERE p.avatar_media_id = candidate.id) AS public_use
            FROM unnest(media_ids) AS candidate (id)) shown
   WHERE m.id = shown.id AND m.public_use IS DISTINCT FROM shown.public_use
$$;

-- After an article changes: its comments learn whether it is published, its revisions who its
-- author is, and its old and new covers whether they are shown.
CREATE FUNCTION articles_propagate_visibility() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    IF (OLD.status = 'published') IS DISTINCT FROM (NEW.status = 'published') THEN
      UPDATE public.comments SET on_published_article = (NEW.status = 'published') WHERE article_id = NEW.id;
    END IF;
    IF OLD.author_id IS DISTINCT FROM NEW.author_id THEN
      UPDATE public.article_revisions SET article_author_id = NEW.author_id WHERE article_id = NEW.id;
    END IF;
  END IF;
  PERFORM public.media_refresh_public_use(array_remove(ARRAY[
    CASE WHEN TG_OP <> 'INSERT' THEN OLD.cover_media_id END,
    CASE WHEN TG_OP <> 'DELETE' THEN NEW.cover_media_id END], NULL));
  RETURN NULL;
END;
$$;
CREATE TRIGGER articles_propagate_visibility
  AFTER INSERT OR DELETE OR UPDATE OF status, author_id, cover_media_id ON articles
  FOR EACH ROW EXECUTE FUNCTION articles_propagate_visibility();

CREATE FUNCTION author_profiles_propagate_avatar() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  PERFORM public.media_refresh_public_use(array_remove(ARRAY[
    CASE WHEN TG_OP <> 'INSERT' THEN OLD.avatar_media_id END,
    CASE WHEN TG_OP <> 'DELETE' THEN NEW.avatar_media_id END], NULL));
  RETURN NULL;
END;
$$;
CREATE TRIGGER author_profiles_propagate_avatar
  AFTER INSERT OR DELETE OR UPDATE OF avatar_media_id ON author_profiles
  FOR EACH ROW EXECUTE FUNCTION author_profiles_propagate_avatar();

REVOKE ALL ON FUNCTION comments_fill_on_published_article(), article_revisions_fill_author(), media_refresh_public_use(uuid[]),
  articles_propagate_visibility(), author_profiles_propagate_avatar() FROM PUBLIC, allixios_app, allixios_readonly;

------------------------------------------------------------------------------------------------
-- Visibility rules on the row alone
------------------------------------------------------------------------------------------------
CREATE FUNCTION comment_visible(comment_status text, comment_author_id uuid, comment_on_published_article boolean, claimed_role text, claimed_user_id uuid)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT CASE
           WHEN claimed_role IN ('editor', 'admin') THEN true
           WHEN claimed_role = 'anonymous' THEN comment_status = 'visible' AND comment_on_published_article
           WHEN claimed_role IN ('reader', 'author') THEN (comment_status = 'visible' AND comment_on_published_article) OR comment_author_id = claimed_user_id
           ELSE false
         END
$$;

CREATE FUNCTION media_visible(uploaded_by uuid, public_use boolean, claimed_role text, claimed_user_id uuid)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT CASE
           WHEN claimed_role IN ('editor', 'admin') THEN true
           WHEN claimed_role = 'anonymous' THEN public_use
           WHEN claimed_role IN ('reader', 'author') THEN public_use OR uploaded_by = claimed_user_id
           ELSE false
         END
$$;

-- Whether the caller may name the file as a cover or an avatar: exactly the files it can see.
-- A file it cannot see and one that does not exist give the same answer, before any foreign key
-- check could tell them apart. (Checked on the row being written only.)
CREATE OR REPLACE FUNCTION media_usable(media_id uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
  SELECT coalesce((
    SELECT public.media_visible(m.uploaded_by, m.public_use, public.app_policy_role(), public.app_policy_user_id())
      FROM public.media m WHERE m.id = media_usable.media_id), false)
$$;

-- Whether the caller sees the comment a reply answers, on that article (the row being written).
CREATE OR REPLACE FUNCTION comment_reply_allowed(parent_id uuid, article_id uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
  SELECT EXISTS (
    SELECT 1 FROM public.comments p
     WHERE p.id = comment_reply_allowed.parent_id AND p.article_id = comment_reply_allowed.article_id
       AND public.comment_visible(p.status, p.author_id, p.on_published_article, public.app_policy_role(), public.app_policy_user_id()))
$$;

------------------------------------------------------------------------------------------------
-- Every policy of the application, on the claim as policies read it
------------------------------------------------------------------------------------------------
ALTER POLICY articles_app_select ON articles
USING (article_visible(status, author_id, app_policy_role(), app_policy_user_id()));
ALTER POLICY articles_app_insert ON articles
WITH CHECK (
  CASE app_policy_role()
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'author' THEN author_id = app_policy_user_id()
    ELSE false
  END
  AND (cover_media_id IS NULL OR media_usable(cover_media_id))
);
ALTER POLICY articles_app_update ON articles
USING (
  CASE app_policy_role()
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'author' THEN author_id = app_policy_user_id()
    ELSE false
  END
)
WITH CHECK (
  CASE app_policy_role()
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'author' THEN author_id = app_policy_user_id()
    ELSE false
  END
  AND (cover_media_id IS NULL OR media_usable(cover_media_id))
);
ALTER POLICY articles_app_delete ON articles
USING (
  CASE app_policy_role()
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'author' THEN author_id = app_policy_user_id() AND status IN ('draft', 'review') AND published_at IS NULL
    ELSE false
  END
);

ALTER POLICY article_revisions_app_select ON article_revisions
USING (
  CASE app_policy_role()
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'author' THEN article_author_id = app_policy_user_id()
    ELSE false
  END
);

-- Tag links follow their article (ids only: what EXPLAIN ANALYZE counts of them is no text).
ALTER POLICY article_tags_app_insert ON article_tags
WITH CHECK (
  EXISTS (
    SELECT 1 FROM articles a
     WHERE a.id = article_tags.article_id
       AND CASE app_policy_role()
             WHEN 'editor' THEN true
             WHEN 'admin' THEN true
             WHEN 'author' THEN a.author_id = app_policy_user_id()
             ELSE false
           END)
);
ALTER POLICY article_tags_app_delete ON article_tags
USING (
  EXISTS (
    SELECT 1 FROM articles a
     WHERE a.id = article_tags.article_id
       AND CASE app_policy_role()
             WHEN 'editor' THEN true
             WHEN 'admin' THEN true
             WHEN 'author' THEN a.author_id = app_policy_user_id()
             ELSE false
           END)
);

ALTER POLICY comments_app_select ON comments
USING (comment_visible(status, author_id, on_published_article, app_policy_role(), app_policy_user_id()));
ALTER POLICY comments_app_insert ON comments
WITH CHECK (
  app_policy_role() IN ('reader', 'author', 'editor', 'admin')
  AND author_id = app_policy_user_id()
  AND status = 'visible'
  AND EXISTS (SELECT 1 FROM articles a WHERE a.id = comments.article_id AND a.status = 'published')
  AND (parent_id IS NULL OR comment_reply_allowed(parent_id, article_id))
);
ALTER POLICY comments_app_update ON comments
USING (
  CASE app_policy_role()
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'reader' THEN author_id = app_policy_user_id()
    WHEN 'author' THEN author_id = app_policy_user_id()
    ELSE false
  END
)
WITH CHECK (
  CASE app_policy_role()
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'reader' THEN author_id = app_policy_user_id()
    WHEN 'author' THEN author_id = app_policy_user_id()
    ELSE false
  END
);
ALTER POLICY comments_app_delete ON comments USING (app_policy_role() IN ('editor', 'admin'));

ALTER POLICY users_app_select ON users
USING (
  CASE app_policy_role()
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'reader' THEN id = app_policy_user_id()
    WHEN 'author' THEN id = app_policy_user_id()
    ELSE false
  END
);
ALTER POLICY users_app_insert ON users
WITH CHECK (
  CASE app_policy_role()
    WHEN 'admin' THEN true
    WHEN 'reader' THEN id = app_policy_user_id() AND users.role = 'reader' AND users.status = 'active'
    WHEN 'author' THEN id = app_policy_user_id() AND users.role = 'reader' AND users.status = 'active'
    WHEN 'editor' THEN id = app_policy_user_id() AND users.role = 'reader' AND users.status = 'active'
    ELSE false
  END
);
ALTER POLICY users_app_update ON users
USING (
  CASE app_policy_role()
    WHEN 'admin' THEN true
    WHEN 'reader' THEN id = app_policy_user_id()
    WHEN 'author' THEN id = app_policy_user_id()
    WHEN 'editor' THEN id = app_policy_user_id()
    ELSE false
  END
)
WITH CHECK (
  CASE app_policy_role()
    WHEN 'admin' THEN true
    WHEN 'reader' THEN id = app_policy_user_id()
    WHEN 'author' THEN id = app_policy_user_id()
    WHEN 'editor' THEN id = app_policy_user_id()
    ELSE false
  END
);
ALTER POLICY users_app_delete ON users USING (app_policy_role() = 'admin');

ALTER POLICY author_profiles_app_select ON author_profiles USING (app_policy_role() <> 'none');
ALTER POLICY author_profiles_app_insert ON author_profiles
WITH CHECK (
  CASE app_policy_role()
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'reader' THEN user_id = app_policy_user_id()
    WHEN 'author' THEN user_id = app_policy_user_id()
    ELSE false
  END
  AND (avatar_media_id IS NULL OR media_usable(avatar_media_id))
);
ALTER POLICY author_profiles_app_update ON author_profiles
USING (
  CASE app_policy_role()
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'reader' THEN user_id = app_policy_user_id()
    WHEN 'author' THEN user_id = app_policy_user_id()
    ELSE false
  END
)
WITH CHECK (
  CASE app_policy_role()
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'reader' THEN user_id = app_policy_user_id()
    WHEN 'author' THEN user_id = app_policy_user_id()
    ELSE false
  END
  AND (avatar_media_id IS NULL OR media_usable(avatar_media_id))
);
ALTER POLICY author_profiles_app_delete ON author_profiles
USING (
  CASE app_policy_role()
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'reader' THEN user_id = app_policy_user_id()
    WHEN 'author' THEN user_id = app_policy_user_id()
    ELSE false
  END
);

ALTER POLICY media_app_select ON media USING (media_visible(uploaded_by, public_use, app_policy_role(), app_policy_user_id()));
ALTER POLICY media_app_insert ON media
WITH CHECK (app_policy_role() IN ('reader', 'author', 'editor', 'admin') AND uploaded_by = app_policy_user_id());
ALTER POLICY media_app_update ON media
USING (
  CASE app_policy_role()
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'reader' THEN uploaded_by = app_policy_user_id()
    WHEN 'author' THEN uploaded_by = app_policy_user_id()
    ELSE false
  END
);
ALTER POLICY media_app_delete ON media USING (app_policy_role() IN ('editor', 'admin'));

ALTER POLICY categories_app_select ON categories USING (app_policy_role() <> 'none');
ALTER POLICY categories_app_insert ON categories WITH CHECK (app_policy_role() IN ('editor', 'admin'));
ALTER POLICY categories_app_update ON categories USING (app_policy_role() IN ('editor', 'admin')) WITH CHECK (app_policy_role() IN ('editor', 'admin'));
ALTER POLICY categories_app_delete ON categories USING (app_policy_role() IN ('editor', 'admin'));

ALTER POLICY tags_app_select ON tags USING (app_policy_role() <> 'none');
ALTER POLICY tags_app_insert ON tags WITH CHECK (app_policy_role() IN ('editor', 'admin'));
ALTER POLICY tags_app_update ON tags USING (app_policy_role() IN ('editor', 'admin')) WITH CHECK (app_policy_role() IN ('editor', 'admin'));
ALTER POLICY tags_app_delete ON tags USING (app_policy_role() IN ('editor', 'admin'));

-- An author's statistics follow their articles (numbers only, as article_tags).
ALTER POLICY daily_article_stats_app_select ON daily_article_stats
USING (
  CASE app_policy_role()
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'author' THEN EXISTS (SELECT 1 FROM articles a WHERE a.id = daily_article_stats.article_id AND a.author_id = app_policy_user_id())
    ELSE false
  END
);
ALTER POLICY daily_article_stats_app_insert ON daily_article_stats WITH CHECK (app_policy_role() = 'admin');
ALTER POLICY daily_article_stats_app_update ON daily_article_stats USING (app_policy_role() = 'admin') WITH CHECK (app_policy_role() = 'admin');

-- The per-row lookups the policies no longer make.
DROP FUNCTION media_visible(uuid, uuid, text, uuid);
DROP FUNCTION media_shown(uuid);
DROP FUNCTION comment_visible(text, uuid, uuid, text, uuid);

------------------------------------------------------------------------------------------------
-- No B-tree over hidden text
------------------------------------------------------------------------------------------------
-- Storage keys are random ('media/' || gen_random_uuid(), V0011): a collision is as likely as
-- guessing one. Looked up by equality only, which a hash index serves and cannot be scanned in
-- key order.
ALTER TABLE media DROP CONSTRAINT media_storage_key_key;
CREATE INDEX media_storage_key_idx ON media USING hash (storage_key);
COMMENT ON INDEX media_storage_key_idx IS 'a file by its storage key: WHERE storage_key = $1 (equality only, by design)';

-- One account per address, decided by a unique index no platform role can query or EXPLAIN
-- (functions/R__user_guard.sql keeps it); users keep a hash index for sign-in lookups.
CREATE TABLE app_private.user_emails (
  user_id uuid PRIMARY KEY REFERENCES public.users (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
  address text NOT NULL,
  CONSTRAINT user_emails_address_key UNIQUE (address)
);
COMMENT ON TABLE app_private.user_emails IS 'one account per lower-cased e-mail address (functions/R__user_guard.sql)';
INSERT INTO app_private.user_emails (user_id, address) SELECT id, lower(email) FROM public.users;
DROP INDEX users_email_lower_key;
CREATE INDEX users_email_lookup_idx ON users USING hash (lower(email));
COMMENT ON INDEX users_email_lookup_idx IS 'sign-in: WHERE lower(email) = lower($1) (equality only, by design)';
-- An expression index keeps statistics of its own: lower(email) gets none (as V0015).
ALTER INDEX users_email_lookup_idx ALTER COLUMN 1 SET STATISTICS 0;

------------------------------------------------------------------------------------------------
-- No planner statistics of these either (as V0015)
------------------------------------------------------------------------------------------------
ALTER TABLE media ALTER COLUMN mime_type SET STATISTICS 0;
ALTER TABLE users ALTER COLUMN role SET STATISTICS 0, ALTER COLUMN status SET STATISTICS 0;
SELECT pg_clear_attribute_stats('public', t.relname, t.attname, false)
  FROM (VALUES ('media', 'mime_type'), ('users', 'role'), ('users', 'status')) t(relname, attname);
