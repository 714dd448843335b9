-- Columns only the system sets, on INSERT as well as UPDATE, enforced by column privileges.
--
-- V0006 granted INSERT and UPDATE on whole tables, so the platform could write any column:
-- backdate created_at, freeze updated_at, forge history rows and their numbering, name the
-- uploader of a file, or pick an article's id or a file's storage key and so reach another
-- user's row through an upsert's conflict path (INSERT ... ON CONFLICT (id) DO UPDATE ...
-- WHERE <expression over the existing row>, which PostgreSQL evaluates before the row-level
-- security check). From here on the application writes only what a user decides:
--
--   id, created_at, updated_at          generated (gen_random_uuid(), now(), R__updated_at.sql)
--   media.storage_key                   generated: the platform stores the file under the key
--                                       the row returns (RETURNING storage_key)
--   media.uploaded_by, comments.author_id   the claiming user (DEFAULT app_current_user_id())
--   article_revisions                   written only by the revision trigger (no INSERT at all)
--   users.id                            the claimed id on self-signup (the one exception)
--
-- The policies (V0007, V0013) decide which rows; these grants decide which columns. SELECT
-- and DELETE stay table-wide as V0006 set them. The migrator owns the tables and writes every
-- column.

REVOKE INSERT, UPDATE ON users, author_profiles, media, categories, articles, tags, article_tags,
                         article_revisions, comments, daily_article_stats
  FROM allixios_app;

GRANT INSERT (id, email, display_name, role, status),
      UPDATE (email, display_name, role, status)
  ON users TO allixios_app;
GRANT INSERT (user_id, display_name, bio, avatar_media_id, website_url),
      UPDATE (display_name, bio, avatar_media_id, website_url)
  ON author_profiles TO allixios_app;
-- A file's type, size and dimensions describe the stored object and do not change; a new
-- upload is a new row. Only the description (alt text) is edited.
GRANT INSERT (mime_type, size_bytes, width, height, alt_text),
      UPDATE (alt_text)
  ON media TO allixios_app;
GRANT INSERT (parent_id, slug, name, description, position),
      UPDATE (parent_id, slug, name, description, position)
  ON categories TO allixios_app;
GRANT INSERT (slug, title, excerpt, body, status, author_id, category_id, cover_media_id, published_at),
      UPDATE (slug, title, excerpt, body, status, author_id, category_id, cover_media_id, published_at)
  ON articles TO allixios_app;
GRANT INSERT (slug, name), UPDATE (slug, name) ON tags TO allixios_app;
GRANT INSERT (article_id, tag_id) ON article_tags TO allixios_app;
-- A comment's place (article, parent) and author never change; its author is the claim.
GRANT INSERT (article_id, parent_id, body), UPDATE (body, status) ON comments TO allixios_app;
GRANT INSERT (article_id, day, views, unique_visitors, comments),
      UPDATE (views, unique_visitors, comments)
  ON daily_article_stats TO allixios_app;

-- Who did it is the claim, not a value the client sends.
ALTER TABLE media ALTER COLUMN uploaded_by SET DEFAULT app_current_user_id();
ALTER TABLE comments ALTER COLUMN author_id SET DEFAULT app_current_user_id();
-- The object store key is the system's: unguessable, and never chosen to collide with another
-- user's file.
ALTER TABLE media ALTER COLUMN storage_key SET DEFAULT 'media/' || gen_random_uuid()::text;

-- History is the revision trigger's alone (functions/R__article_revisions.sql, which now runs
-- as the owner): no client inserts a revision, so none can forge one or its number.
DROP POLICY article_revisions_app_insert ON article_revisions;

-- A table added later is reachable by nobody until its migration grants what it needs and
-- writes its policies (test/postgresql-attacks.test.ts refuses a granted table without them):
-- V0001's defaults gave every new table full row access, with or without row-level security.
ALTER DEFAULT PRIVILEGES FOR ROLE allixios_owner IN SCHEMA public
  REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM allixios_app;
ALTER DEFAULT PRIVILEGES FOR ROLE allixios_owner IN SCHEMA public
  REVOKE SELECT ON TABLES FROM allixios_readonly;
