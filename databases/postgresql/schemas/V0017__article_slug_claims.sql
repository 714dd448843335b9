-- Each author's articles have distinct slugs, held by a unique index no platform role can read.
--
-- Since V0012 slugs are unique among published articles only, and the slug trigger kept one
-- author's articles apart by looking before writing, under a transaction lock. Under REPEATABLE
-- READ that look uses the transaction's snapshot: two transactions of one author both found a
-- slug free and both committed it. A unique index decides whatever the snapshots, but a unique
-- index on articles (author_id, slug) would hold every hidden draft's slug where EXPLAIN ANALYZE
-- of range probes (WHERE author_id = $1 AND slug > $2) spells them out.
--
-- So the claims live apart: app_private.article_slugs, one row per article, unique per author
-- and slug, written only by the slug trigger (functions/R__article_slugs.sql, running as the
-- owner). No platform role has USAGE on app_private: no query, no EXPLAIN, reaches it. A row goes
-- with its article (ON DELETE CASCADE, run as the owner); the foreign key is checked at commit,
-- since the trigger claims before the article row exists.
CREATE SCHEMA app_private;
REVOKE ALL ON SCHEMA app_private FROM PUBLIC;
COMMENT ON SCHEMA app_private IS 'what only the system''s own functions read and write; no platform role has USAGE';

CREATE TABLE app_private.article_slugs (
  article_id uuid PRIMARY KEY REFERENCES public.articles (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
  author_id  uuid NOT NULL,
  slug       text NOT NULL,
  CONSTRAINT article_slugs_author_slug_key UNIQUE (author_id, slug)
);
COMMENT ON TABLE app_private.article_slugs IS 'one slug per article, distinct per author (functions/R__article_slugs.sql)';

INSERT INTO app_private.article_slugs (article_id, author_id, slug)
SELECT id, author_id, slug FROM public.articles;
