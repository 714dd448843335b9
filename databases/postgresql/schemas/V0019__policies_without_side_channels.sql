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
--   - policies read the claim through app_policy_role() / app_policy_user_id(), called in each
--     row's check: no initPlan, nothing "never executed", and they never raise. Settings not claimed in this transaction (a claim left in the session) are
--     the claim 'none', to which every policy refuses everything (not even published articles);
--     a role no policy knows falls to their ELSE false. app_claim() still raises on a bad claim,
--     at once: that is where the platform learns of it.
--   - what a policy needs from another table is kept on the row itself, by the system, as a
--     column no client writes: comments.on_published_article, article_revisions.article_author_id,
--     article_tags.article_status and .article_author_id, daily_article_stats.article_author_id,
--     media.public_use. Triggers (SECURITY DEFINER, below) keep them current. No policy looks at
--     another table per row any more (the per-row lookups of tag links and statistics cost the
--     tag page and the author's report more than the comparison that replaces them).
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
-- What EXPLAIN ANALYZE still counts: how many rows a scan met before its policy refused them,
-- and so ids, times and counts of hidden rows, never their text (README: Threat model, "Out of
-- scope").

------------------------------------------------------------------------------------------------
-- The claim, as policies read it
------------------------------------------------------------------------------------------------
-- Evaluated once per row now, not once per statement, so it is kept cheap (npm run bench):
-- small PL/pgSQL functions, called per row and never inlined (an inlined CASE doubled the
-- planning time of the hot queries), reading no table (so nothing of them shows in a plan's
-- counts or buffers), and never raising. The stamp is the transaction's timestamp as text (the
-- same role V0010's numeric conversion played, at a fifth of its cost); user ids are compared as
-- text, so a malformed id matches nothing instead of raising. A session that changes DateStyle
-- or TimeZone after claiming only makes its claim 'none'.
CREATE OR REPLACE FUNCTION app_transaction_stamp() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN transaction_timestamp()::text;

-- No claim, or an anonymous one, is anonymous (whatever transaction left it: anonymous is the
-- least a claim can be, and most of the platform's traffic, which so never computes the stamp);
-- a claim made by app_claim() in this transaction is what it says (app_claim() checked it; a
-- role no policy knows falls to their ELSE false); any other settings, a claim left from another
-- transaction among them, are 'none'.
CREATE FUNCTION app_policy_role() RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
  claimed_role text := coalesce(current_setting('app.user_role', true), '');
BEGIN
  IF claimed_role IN ('', 'anonymous') AND coalesce(current_setting('app.user_id', true), '') = '' THEN
    RETURN 'anonymous';
  END IF;
  IF current_setting('app.claimed_in', true) = public.app_transaction_stamp() THEN
    RETURN claimed_role;
  END IF;
  RETURN 'none';
END;
$$;
COMMENT ON FUNCTION app_policy_role() IS
  'the role a policy judges by: the claim of this transaction, failing closed (''none'') instead of raising';

-- The claim's user id as text: compared with uuid::text, a malformed one matches no row.
CREATE FUNCTION app_policy_user_id() RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
BEGIN
  IF current_setting('app.claimed_in', true) = public.app_transaction_stamp() THEN
    RETURN current_setting('app.user_id', true);
  END IF;
  RETURN NULL;
END;
$$;
COMMENT ON FUNCTION app_policy_user_id() IS
  'the user a policy judges by, as text: NULL unless claimed in this transaction';

-- Article visibility, failing closed: a role other than the platform's five sees nothing.
CREATE FUNCTION article_visible(article_status text, article_author_id uuid, claimed_role text, claimed_user_id text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT CASE claimed_role
           WHEN 'editor' THEN true
           WHEN 'admin' THEN true
           WHEN 'author' THEN article_status = 'published' OR article_author_id::text = claimed_user_id
           WHEN 'reader' THEN article_status = 'published'
           WHEN 'anonymous' THEN article_status = 'published'
           ELSE false
         END
$$;
COMMENT ON FUNCTION article_visible(text, uuid, text, text) IS
  'whether an article (status, author) is visible to a claim (app_policy_role(), app_policy_user_id()): the articles_app_select policy';

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

ALTER TABLE article_tags ADD COLUMN article_status text, ADD COLUMN article_author_id uuid;
COMMENT ON COLUMN article_tags.article_status IS 'the status of the tag link''s article; kept by the system (V0019)';
COMMENT ON COLUMN article_tags.article_author_id IS 'the author of the tag link''s article; kept by the system (V0019)';
UPDATE article_tags t SET article_status = a.status, article_author_id = a.author_id FROM articles a WHERE a.id = t.article_id;
ALTER TABLE article_tags ALTER COLUMN article_status SET NOT NULL, ALTER COLUMN article_author_id SET NOT NULL;

ALTER TABLE daily_article_stats ADD COLUMN article_author_id uuid;
COMMENT ON COLUMN daily_article_stats.article_author_id IS 'the author of the statistics'' article; kept by the system (V0019)';
UPDATE daily_article_stats d SET article_author_id = a.author_id FROM articles a WHERE a.id = d.article_id;
ALTER TABLE daily_article_stats ALTER COLUMN article_author_id SET NOT NULL;

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

-- A tag link and a day of statistics carry their article's state. A link to an article that
-- does not exist (or that the writer cannot see) gets nothing here, and is refused by its
-- insert policy, like one to a hidden article, before the foreign key could tell them apart.
CREATE FUNCTION article_tags_fill_article() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  SELECT a.status, a.author_id INTO NEW.article_status, NEW.article_author_id FROM public.articles a WHERE a.id = NEW.article_id;
  RETURN NEW;
END;
$$;
CREATE TRIGGER article_tags_fill_article
  BEFORE INSERT ON article_tags FOR EACH ROW EXECUTE FUNCTION article_tags_fill_article();

CREATE FUNCTION daily_article_stats_fill_author() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  NEW.article_author_id := (SELECT a.author_id FROM public.articles a WHERE a.id = NEW.article_id);
  RETURN NEW;
END;
$$;
CREATE TRIGGER daily_article_stats_fill_author
  BEFORE INSERT ON daily_article_stats FOR EACH ROW EXECUTE FUNCTION daily_article_stats_fill_author();

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

-- After an article changes: its comments learn whether it is published, its revisions, tag
-- links and statistics who its author is (the links also its status), and its old and new
-- covers whether they are shown.
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
      UPDATE public.daily_article_stats SET article_author_id = NEW.author_id WHERE article_id = NEW.id;
    END IF;
    IF (OLD.status, OLD.author_id) IS DISTINCT FROM (NEW.status, NEW.author_id) THEN
      UPDATE public.article_tags SET article_status = NEW.status, article_author_id = NEW.author_id WHERE article_id = NEW.id;
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

REVOKE ALL ON FUNCTION comments_fill_on_published_article(), article_revisions_fill_author(), article_tags_fill_article(),
  daily_article_stats_fill_author(), media_refresh_public_use(uuid[]),
  articles_propagate_visibility(), author_profiles_propagate_avatar() FROM PUBLIC, allixios_app, allixios_readonly;

------------------------------------------------------------------------------------------------
-- Visibility rules on the row alone
------------------------------------------------------------------------------------------------
CREATE FUNCTION comment_visible(comment_status text, comment_author_id uuid, comment_on_published_article boolean, claimed_role text, claimed_user_id text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT CASE
           WHEN claimed_role IN ('editor', 'admin') THEN true
           WHEN claimed_role = 'anonymous' THEN comment_status = 'visible' AND comment_on_published_article
           WHEN claimed_role IN ('reader', 'author') THEN (comment_status = 'visible' AND comment_on_published_article) OR comment_author_id::text = claimed_user_id
           ELSE false
         END
$$;

CREATE FUNCTION media_visible(uploaded_by uuid, public_use boolean, claimed_role text, claimed_user_id text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT CASE
           WHEN claimed_role IN ('editor', 'admin') THEN true
           WHEN claimed_role = 'anonymous' THEN public_use
           WHEN claimed_role IN ('reader', 'author') THEN public_use OR uploaded_by::text = claimed_user_id
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
    WHEN 'author' THEN author_id::text = app_policy_user_id()
    ELSE false
  END
  AND (cover_media_id IS NULL OR media_usable(cover_media_id))
);
ALTER POLICY articles_app_update ON articles
USING (
  CASE app_policy_role()
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'author' THEN author_id::text = app_policy_user_id()
    ELSE false
  END
)
WITH CHECK (
  CASE app_policy_role()
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'author' THEN author_id::text = app_policy_user_id()
    ELSE false
  END
  AND (cover_media_id IS NULL OR media_usable(cover_media_id))
);
ALTER POLICY articles_app_delete ON articles
USING (
  CASE app_policy_role()
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'author' THEN author_id::text = app_policy_user_id() AND status IN ('draft', 'review') AND published_at IS NULL
    ELSE false
  END
);

ALTER POLICY article_revisions_app_select ON article_revisions
USING (
  CASE app_policy_role()
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'author' THEN article_author_id::text = app_policy_user_id()
    ELSE false
  END
);

-- Tag links follow their article: seen where it is, added and removed where it is editable.
ALTER POLICY article_tags_app_select ON article_tags
USING (article_visible(article_status, article_author_id, app_policy_role(), app_policy_user_id()));
ALTER POLICY article_tags_app_insert ON article_tags
WITH CHECK (
  CASE app_policy_role()
    WHEN 'editor' THEN article_author_id IS NOT NULL
    WHEN 'admin' THEN article_author_id IS NOT NULL
    WHEN 'author' THEN article_author_id::text = app_policy_user_id()
    ELSE false
  END
);
ALTER POLICY article_tags_app_delete ON article_tags
USING (
  CASE app_policy_role()
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'author' THEN article_author_id::text = app_policy_user_id()
    ELSE false
  END
);

ALTER POLICY comments_app_select ON comments
USING (comment_visible(status, author_id, on_published_article, app_policy_role(), app_policy_user_id()));
ALTER POLICY comments_app_insert ON comments
WITH CHECK (
  app_policy_role() IN ('reader', 'author', 'editor', 'admin')
  AND author_id::text = app_policy_user_id()
  AND status = 'visible'
  AND EXISTS (SELECT 1 FROM articles a WHERE a.id = comments.article_id AND a.status = 'published')
  AND (parent_id IS NULL OR comment_reply_allowed(parent_id, article_id))
);
ALTER POLICY comments_app_update ON comments
USING (
  CASE app_policy_role()
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'reader' THEN author_id::text = app_policy_user_id()
    WHEN 'author' THEN author_id::text = app_policy_user_id()
    ELSE false
  END
)
WITH CHECK (
  CASE app_policy_role()
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'reader' THEN author_id::text = app_policy_user_id()
    WHEN 'author' THEN author_id::text = app_policy_user_id()
    ELSE false
  END
);
ALTER POLICY comments_app_delete ON comments USING (app_policy_role() IN ('editor', 'admin'));

ALTER POLICY users_app_select ON users
USING (
  CASE app_policy_role()
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'reader' THEN id::text = app_policy_user_id()
    WHEN 'author' THEN id::text = app_policy_user_id()
    ELSE false
  END
);
ALTER POLICY users_app_insert ON users
WITH CHECK (
  CASE app_policy_role()
    WHEN 'admin' THEN true
    WHEN 'reader' THEN id::text = app_policy_user_id() AND users.role = 'reader' AND users.status = 'active'
    WHEN 'author' THEN id::text = app_policy_user_id() AND users.role = 'reader' AND users.status = 'active'
    WHEN 'editor' THEN id::text = app_policy_user_id() AND users.role = 'reader' AND users.status = 'active'
    ELSE false
  END
);
ALTER POLICY users_app_update ON users
USING (
  CASE app_policy_role()
    WHEN 'admin' THEN true
    WHEN 'reader' THEN id::text = app_policy_user_id()
    WHEN 'author' THEN id::text = app_policy_user_id()
    WHEN 'editor' THEN id::text = app_policy_user_id()
    ELSE false
  END
)
WITH CHECK (
  CASE app_policy_role()
    WHEN 'admin' THEN true
    WHEN 'reader' THEN id::text = app_policy_user_id()
    WHEN 'author' THEN id::text = app_policy_user_id()
    WHEN 'editor' THEN id::text = app_policy_user_id()
    ELSE false
  END
);
ALTER POLICY users_app_delete ON users USING (app_policy_role() = 'admin');

ALTER POLICY author_profiles_app_select ON author_profiles USING (app_policy_role() IN ('anonymous', 'reader', 'author', 'editor', 'admin'));
ALTER POLICY author_profiles_app_insert ON author_profiles
WITH CHECK (
  CASE app_policy_role()
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'reader' THEN user_id::text = app_policy_user_id()
    WHEN 'author' THEN user_id::text = app_policy_user_id()
    ELSE false
  END
  AND (avatar_media_id IS NULL OR media_usable(avatar_media_id))
);
ALTER POLICY author_profiles_app_update ON author_profiles
USING (
  CASE app_policy_role()
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'reader' THEN user_id::text = app_policy_user_id()
    WHEN 'author' THEN user_id::text = app_policy_user_id()
    ELSE false
  END
)
WITH CHECK (
  CASE app_policy_role()
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'reader' THEN user_id::text = app_policy_user_id()
    WHEN 'author' THEN user_id::text = app_policy_user_id()
    ELSE false
  END
  AND (avatar_media_id IS NULL OR media_usable(avatar_media_id))
);
ALTER POLICY author_profiles_app_delete ON author_profiles
USING (
  CASE app_policy_role()
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'reader' THEN user_id::text = app_policy_user_id()
    WHEN 'author' THEN user_id::text = app_policy_user_id()
    ELSE false
  END
);

ALTER POLICY media_app_select ON media USING (media_visible(uploaded_by, public_use, app_policy_role(), app_policy_user_id()));
ALTER POLICY media_app_insert ON media
WITH CHECK (app_policy_role() IN ('reader', 'author', 'editor', 'admin') AND uploaded_by::text = app_policy_user_id());
ALTER POLICY media_app_update ON media
USING (
  CASE app_policy_role()
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'reader' THEN uploaded_by::text = app_policy_user_id()
    WHEN 'author' THEN uploaded_by::text = app_policy_user_id()
    ELSE false
  END
);
ALTER POLICY media_app_delete ON media USING (app_policy_role() IN ('editor', 'admin'));

ALTER POLICY categories_app_select ON categories USING (app_policy_role() IN ('anonymous', 'reader', 'author', 'editor', 'admin'));
ALTER POLICY categories_app_insert ON categories WITH CHECK (app_policy_role() IN ('editor', 'admin'));
ALTER POLICY categories_app_update ON categories USING (app_policy_role() IN ('editor', 'admin')) WITH CHECK (app_policy_role() IN ('editor', 'admin'));
ALTER POLICY categories_app_delete ON categories USING (app_policy_role() IN ('editor', 'admin'));

ALTER POLICY tags_app_select ON tags USING (app_policy_role() IN ('anonymous', 'reader', 'author', 'editor', 'admin'));
ALTER POLICY tags_app_insert ON tags WITH CHECK (app_policy_role() IN ('editor', 'admin'));
ALTER POLICY tags_app_update ON tags USING (app_policy_role() IN ('editor', 'admin')) WITH CHECK (app_policy_role() IN ('editor', 'admin'));
ALTER POLICY tags_app_delete ON tags USING (app_policy_role() IN ('editor', 'admin'));

-- An author's statistics follow their articles.
ALTER POLICY daily_article_stats_app_select ON daily_article_stats
USING (
  CASE app_policy_role()
    WHEN 'editor' THEN true
    WHEN 'admin' THEN true
    WHEN 'author' THEN article_author_id::text = app_policy_user_id()
    ELSE false
  END
);
ALTER POLICY daily_article_stats_app_insert ON daily_article_stats WITH CHECK (app_policy_role() = 'admin');
ALTER POLICY daily_article_stats_app_update ON daily_article_stats USING (app_policy_role() = 'admin') WITH CHECK (app_policy_role() = 'admin');

-- The per-row lookups the policies no longer make, and the rules that took a uuid.
DROP FUNCTION article_visible(text, uuid, text, uuid);
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
