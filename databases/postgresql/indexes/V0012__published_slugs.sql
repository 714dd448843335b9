-- Slugs are unique among published articles, not across every draft.
--
-- A slug is an article's public URL. V0004 made it unique over all articles, so the constraint
-- answered questions about articles the asker cannot see: author A inserting a draft with slug
-- "acme-merger" learned from the unique violation that someone's hidden draft has it, the slug
-- trigger's -2 suffix said the same, and an upsert on the slug (INSERT ... ON CONFLICT (slug)
-- DO UPDATE ... WHERE <expression over the existing row>) evaluated that expression on the
-- hidden draft before row-level security refused it, returning its text in the error. And as
-- an index over every row with a leakproof operator (text <, >), EXPLAIN ANALYZE of range
-- probes (WHERE slug > 'm') counted hidden rows and spelled out a hidden draft's slug.
--
-- Now:
--   * published slugs are unique (this index), which is what a URL needs; every claim sees
--     every published article, so a conflict here reveals nothing;
--   * the slug trigger (functions/R__article_slugs.sql) keeps each author's own articles apart
--     and generates slugs that avoid published ones and the author's own: only what the writer
--     can see decides, so nothing about other authors' drafts leaks through a slug;
--   * publishing a draft whose slug a published article already has is refused (by
--     publish_article() with a message, by this index on any other path).
-- No index holds the slugs of unpublished articles, so no plan can be used to probe them.
ALTER TABLE articles DROP CONSTRAINT articles_slug_key;

-- Article page: SELECT ... FROM articles WHERE slug = $1 AND status = 'published'.
CREATE UNIQUE INDEX articles_published_slug_key ON articles (slug) WHERE status = 'published';
COMMENT ON INDEX articles_published_slug_key IS
  'article page: published article by slug (WHERE slug = $1 AND status = ''published''); keeps published slugs unique';
