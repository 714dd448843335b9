-- Article slugs: an article inserted (or updated) with an empty slug gets one made from its
-- title, with -2, -3, ... appended while the slug is taken. A slug given explicitly is kept as
-- is (the UNIQUE constraint refuses a duplicate).

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

-- Whether no other article uses the slug. SECURITY DEFINER because the answer must cover every
-- article, including other authors' drafts that the caller's RLS hides; it returns only a
-- boolean about one slug, which the UNIQUE constraint would reveal anyway. The search_path is
-- pinned (pg_temp last) so a caller's temporary table cannot stand in for articles.
CREATE OR REPLACE FUNCTION article_slug_available(candidate text, excluded_article_id uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
  SELECT NOT EXISTS (
    SELECT 1 FROM public.articles a
     WHERE a.slug = candidate AND a.id IS DISTINCT FROM excluded_article_id)
$$;
-- Only the platform needs it (the slug trigger runs as the writing user).
REVOKE ALL ON FUNCTION article_slug_available(text, uuid) FROM PUBLIC, allixios_readonly;
GRANT EXECUTE ON FUNCTION article_slug_available(text, uuid) TO allixios_app;

CREATE OR REPLACE FUNCTION articles_fill_slug() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  base text;
  candidate text;
  suffix integer := 1;
BEGIN
  IF NEW.slug IS NOT NULL AND NEW.slug <> '' THEN
    RETURN NEW;
  END IF;
  base := coalesce(nullif(public.slugify(NEW.title), ''), 'untitled');
  -- Two transactions slugging the same title would both find it free and one would fail on the
  -- UNIQUE constraint. The lock makes the second wait until the first ends; its next check
  -- then sees the committed slug and moves on to the next suffix.
  PERFORM pg_advisory_xact_lock(hashtextextended('allixios.articles.slug:' || base, 0));
  candidate := base;
  WHILE NOT public.article_slug_available(candidate, NEW.id) LOOP
    suffix := suffix + 1;
    candidate := base || '-' || suffix;
  END LOOP;
  NEW.slug := candidate;
  RETURN NEW;
END;
$$;

CREATE OR REPLACE TRIGGER articles_fill_slug
  BEFORE INSERT OR UPDATE OF slug ON articles
  FOR EACH ROW EXECUTE FUNCTION articles_fill_slug();
