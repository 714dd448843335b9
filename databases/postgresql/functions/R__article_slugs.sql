-- Article slugs: an article inserted (or updated) with an empty slug gets one made from its
-- title, with -2, -3, ... appended while the slug is taken, where "taken" means by a published
-- article or by another article of the same author (indexes/V0012__published_slugs.sql says
-- why drafts of different authors may share a slug). A slug given explicitly is checked the same
-- way; the unique index on published slugs is the last word on publication.

-- 'Ünïcode & Friends!' -> 'unicode-friends'. Accents are dropped by decomposing (NFKD) and
-- removing the combining marks, so no unaccent extension is needed; anything else that is not
-- a-z or 0-9 becomes a hyphen. At most 80 characters, leaving room for a suffix under the
-- 120-character limit of articles_slug_format.
CREATE OR REPLACE FUNCTION slugify(input text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN btrim(
  left(
    btrim(regexp_replace(lower(regexp_replace(normalize(input, NFKD), '[\u0300-\u036f]', '', 'g')), '[^a-z0-9]+', '-', 'g'), '-'),
    80),
  '-');

-- article_slug_available(), the earlier helper, answered as the owner whether any article in
-- the whole table had a slug: a yes/no oracle on other authors' hidden drafts. Slugs are now unique
-- among published articles only (indexes/V0012__published_slugs.sql), and distinct per author
-- through claims no platform role can read (schemas/V0017__article_slug_claims.sql).
DROP FUNCTION IF EXISTS article_slug_available(text, uuid);

-- Claims `candidate` for the article in app_private.article_slugs (moving the article's
-- earlier claim, if any): false when another article of the same author holds it. The unique
-- index decides, whatever the transaction's snapshot, and a concurrent claim of the same slug
-- waits for the other transaction to end. No platform role may call it.
CREATE OR REPLACE FUNCTION article_slug_claim(article uuid, author uuid, candidate text) RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  INSERT INTO app_private.article_slugs (article_id, author_id, slug)
  VALUES (article, author, candidate)
  ON CONFLICT (article_id) DO UPDATE SET author_id = excluded.author_id, slug = excluded.slug;
  RETURN true;
EXCEPTION WHEN unique_violation THEN
  RETURN false;
END;
$$;
REVOKE ALL ON FUNCTION article_slug_claim(uuid, uuid, text) FROM PUBLIC, allixios_app, allixios_readonly;

-- Whether a published article other than `excluded_article_id` has the slug. Every claim sees
-- published articles, so the answer tells the writer nothing new.
CREATE OR REPLACE FUNCTION article_slug_published(candidate text, excluded_article_id uuid) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
  SELECT EXISTS (
    SELECT 1 FROM public.articles a
     WHERE a.slug = candidate AND a.status = 'published' AND a.id IS DISTINCT FROM excluded_article_id)
$$;
REVOKE ALL ON FUNCTION article_slug_published(text, uuid) FROM PUBLIC, allixios_app, allixios_readonly;

-- An empty slug becomes slugify(title), then -2, -3, ... while a published article or another
-- article of the same author has it; a slug given explicitly must be free the same way. Every
-- decision is a claim (article_slug_claim above), so two transactions never both get a slug.
-- SECURITY DEFINER: the claims are the system's, and a trigger function cannot be called by
-- anyone directly. It never answers about an author the writer cannot write for: such a row is
-- refused here with the policy's own error, so the answer is the same whatever the author's
-- slugs. (Refused here as well as by the policy: a statement can change the claim between rows
-- with set_config(); the policies read the claim per row since V0019, and this check does too.)
CREATE OR REPLACE FUNCTION articles_fill_slug() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  -- Inside this function current_user is the owner; session_user is who is writing.
  by_migrator boolean := session_user = 'allixios_owner';
  base text;
  candidate text;
  suffix integer := 1;
BEGIN
  IF NOT by_migrator AND NOT public.app_is_staff()
     AND NEW.author_id IS DISTINCT FROM public.app_current_user_id() THEN
    RAISE EXCEPTION 'new row violates row-level security policy for table "articles"'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF NEW.slug IS NOT NULL AND NEW.slug <> '' THEN
    IF TG_OP = 'UPDATE' AND NEW.slug = OLD.slug AND NEW.author_id = OLD.author_id THEN
      RETURN NEW;
    END IF;
    -- Data migrations and bulk loads give their slugs; the published index is their backstop.
    IF (NOT by_migrator AND public.article_slug_published(NEW.slug, NEW.id))
       OR NOT public.article_slug_claim(NEW.id, NEW.author_id, NEW.slug) THEN
      RAISE EXCEPTION 'the slug "%" is already used by a published article or by another article of the same author', NEW.slug
        USING ERRCODE = 'unique_violation',
              HINT = 'choose another slug, or leave it empty to have one made from the title';
    END IF;
    RETURN NEW;
  END IF;
  base := coalesce(nullif(public.slugify(NEW.title), ''), 'untitled');
  candidate := base;
  WHILE public.article_slug_published(candidate, NEW.id) OR NOT public.article_slug_claim(NEW.id, NEW.author_id, candidate) LOOP
    suffix := suffix + 1;
    candidate := base || '-' || suffix;
  END LOOP;
  NEW.slug := candidate;
  RETURN NEW;
END;
$$;
REVOKE ALL ON FUNCTION articles_fill_slug() FROM PUBLIC, allixios_app, allixios_readonly;

CREATE OR REPLACE TRIGGER articles_fill_slug
  BEFORE INSERT OR UPDATE OF slug, author_id ON articles
  FOR EACH ROW EXECUTE FUNCTION articles_fill_slug();
