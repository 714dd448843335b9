-- Publishing is the editors' and admins' call. Two ways lead to status 'published' and both are
-- guarded: publish_article() (the normal path, with validation and the publication time) and a
-- direct UPDATE/INSERT, which the trigger below checks.

-- What only the staff (or the migrator) may do to an article, whatever the policies let an
-- author update (their own articles):
--   * publish it (status published), or set its publication time (an author could otherwise
--     lift an article to the top of the homepage by dating it ahead);
--   * unpublish or archive it: once published, an article's status is editorial, and so is
--     its slug (its URL); an archived article is the staff's to change at all;
--   * create it in any status other than draft or review.
-- An author keeps correcting the text of a published article (every version stays in
-- article_revisions) and moves their unpublished articles between draft and review.
CREATE OR REPLACE FUNCTION articles_guard_editorial() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  -- published_at records that the article went out: an author may delete only what never did
  -- (articles_app_delete), so nobody but the migrator takes that record back.
  IF TG_OP = 'UPDATE' AND OLD.published_at IS NOT NULL AND NEW.published_at IS NULL AND NOT public.app_is_migrator() THEN
    RAISE EXCEPTION 'article % was published: its published_at is kept, and can be moved but not cleared', OLD.id
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF public.app_is_migrator() OR public.app_is_staff() THEN
    RETURN NEW;
  END IF;
  IF NEW.status = 'published' AND (TG_OP = 'INSERT' OR OLD.status IS DISTINCT FROM 'published') THEN
    RAISE EXCEPTION 'only editors and admins publish articles; app.user_role is %', public.app_current_role()
      USING ERRCODE = 'insufficient_privilege',
            HINT = 'set the status to review; an editor publishes with publish_article()';
  END IF;
  IF TG_OP = 'INSERT' AND NEW.status NOT IN ('draft', 'review') THEN
    RAISE EXCEPTION 'an author creates drafts and articles in review, not % ones; app.user_role is %', NEW.status, public.app_current_role()
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF TG_OP = 'UPDATE' THEN
    IF OLD.status = 'archived' THEN
      RAISE EXCEPTION 'article % is archived: only editors and admins change it', OLD.id
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.status = 'published' AND NEW.status IS DISTINCT FROM OLD.status THEN
      RAISE EXCEPTION 'only editors and admins unpublish or archive an article; app.user_role is %', public.app_current_role()
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.status = 'archived' THEN
      RAISE EXCEPTION 'only editors and admins archive articles; app.user_role is %', public.app_current_role()
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.status = 'published' AND NEW.slug IS DISTINCT FROM OLD.slug THEN
      RAISE EXCEPTION 'the slug of a published article is its URL: only editors and admins change it'
        USING ERRCODE = 'insufficient_privilege';
    END IF;
  END IF;
  IF (TG_OP = 'INSERT' AND NEW.published_at IS NOT NULL)
     OR (TG_OP = 'UPDATE' AND NEW.published_at IS DISTINCT FROM OLD.published_at) THEN
    RAISE EXCEPTION 'only editors and admins set published_at; app.user_role is %', public.app_current_role()
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END;
$$;

CREATE OR REPLACE TRIGGER articles_guard_editorial
  BEFORE INSERT OR UPDATE ON articles
  FOR EACH ROW EXECUTE FUNCTION articles_guard_editorial();

-- Publishes an article the caller can see: checks that it is complete, sets status and
-- published_at (now), and returns published_at. Publishing an already published article
-- changes nothing and returns its existing published_at. SECURITY INVOKER: the caller's
-- row-level security applies to the read and the update.
CREATE OR REPLACE FUNCTION publish_article(article_id uuid) RETURNS timestamptz
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  target public.articles%ROWTYPE;
  missing text[] := '{}';
  stamped timestamptz;
BEGIN
  IF NOT (public.app_is_migrator() OR public.app_is_staff()) THEN
    RAISE EXCEPTION 'only editors and admins publish articles; app.user_role is %', public.app_current_role()
      USING ERRCODE = 'insufficient_privilege';
  END IF;

  -- FOR UPDATE: two editors publishing at once do not both stamp.
  SELECT * INTO target FROM public.articles a WHERE a.id = publish_article.article_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'article % does not exist or is not visible to the current user', publish_article.article_id
      USING ERRCODE = 'no_data_found';
  END IF;
  IF target.status = 'published' THEN
    RETURN target.published_at;
  END IF;

  IF btrim(target.title) = '' THEN missing := missing || 'a title'::text; END IF;
  IF btrim(target.body) = '' THEN missing := missing || 'a body'::text; END IF;
  IF target.category_id IS NULL THEN missing := missing || 'a category'::text; END IF;
  IF cardinality(missing) > 0 THEN
    RAISE EXCEPTION 'article % cannot be published: it needs %', target.id, array_to_string(missing, ', ')
      USING ERRCODE = 'check_violation';
  END IF;
  -- Published slugs are unique (articles_published_slug_key); say which article has it.
  IF EXISTS (SELECT 1 FROM public.articles a WHERE a.slug = target.slug AND a.status = 'published' AND a.id <> target.id) THEN
    RAISE EXCEPTION 'article % cannot be published: the published article % already has the slug "%"', target.id,
        (SELECT a.id FROM public.articles a WHERE a.slug = target.slug AND a.status = 'published' AND a.id <> target.id), target.slug
      USING ERRCODE = 'unique_violation',
            HINT = 'give the article another slug, then publish it';
  END IF;

  UPDATE public.articles a
     SET status = 'published', published_at = now()
   WHERE a.id = target.id
  RETURNING a.published_at INTO stamped;
  RETURN stamped;
END;
$$;
