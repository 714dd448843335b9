-- The indexes the platform's queries need, each named after the query it serves. Every index
-- also gets a COMMENT, so \di+ and pg_description tell the same story as this file; indexes
-- that come with a PRIMARY KEY or UNIQUE constraint are only commented here.
--
-- Built in the migration's transaction: the tables are new and empty at this point. An index
-- added later to a live table is built CONCURRENTLY in a no-transaction migration instead (see
-- migrations/V0008__comments_by_author_index.sql).
--
-- Left without an index on purpose (the platform does not query them; only a rare deletion of
-- the referenced row scans): articles.category_id outside published articles (deleting a
-- category), article_revisions.edited_by and author_profiles.avatar_media_id.

-- Category page, keyset-paged:
--   SELECT ... FROM articles WHERE status = 'published' AND category_id = $1
--     AND (published_at, id) < ($2, $3) ORDER BY published_at DESC, id DESC LIMIT 20
-- Partial: only published rows, the ones readers page through; id breaks ties of published_at.
CREATE INDEX articles_published_by_category_idx
  ON articles (category_id, published_at DESC, id DESC) WHERE status = 'published';
COMMENT ON INDEX articles_published_by_category_idx IS
  'category page: published articles of a category, newest first, keyset paging on (published_at, id)';

-- Homepage and feeds:
--   SELECT ... FROM articles WHERE status = 'published' ORDER BY published_at DESC, id DESC LIMIT 20
CREATE INDEX articles_published_newest_idx
  ON articles (published_at DESC, id DESC) WHERE status = 'published';
COMMENT ON INDEX articles_published_newest_idx IS
  'homepage and feeds: newest published articles, keyset paging on (published_at, id)';

-- An author's desk (drafts, articles in review), most recently edited first:
--   SELECT ... FROM articles WHERE author_id = $1 AND status = 'draft' ORDER BY updated_at DESC
-- Also finds an account's articles when the account is deleted (ON DELETE RESTRICT).
CREATE INDEX articles_author_status_updated_idx
  ON articles (author_id, status, updated_at DESC);
COMMENT ON INDEX articles_author_status_updated_idx IS
  'author desk: an author''s articles by status, most recently edited first; the users foreign key';

-- Media library "used as cover by", and the ON DELETE SET NULL when an image is deleted:
--   SELECT ... FROM articles WHERE cover_media_id = $1
CREATE INDEX articles_cover_media_idx
  ON articles (cover_media_id) WHERE cover_media_id IS NOT NULL;
COMMENT ON INDEX articles_cover_media_idx IS
  'media library: articles using an image as cover; the media foreign key';

-- Full-text search: WHERE search_vector @@ websearch_to_tsquery('english', $1) (search_articles).
CREATE INDEX articles_search_vector_idx
  ON articles USING gin (search_vector);
COMMENT ON INDEX articles_search_vector_idx IS
  'full-text search: search_vector @@ websearch_to_tsquery(...)';

-- Article page: SELECT ... FROM articles WHERE slug = $1 (the UNIQUE constraint's index).
COMMENT ON INDEX articles_slug_key IS
  'article page: article by slug; keeps slugs unique';
COMMENT ON INDEX articles_pkey IS 'article by id';

-- Tag page, then joined to articles:
--   SELECT article_id FROM article_tags WHERE tag_id = $1
CREATE INDEX article_tags_tag_article_idx
  ON article_tags (tag_id, article_id);
COMMENT ON INDEX article_tags_tag_article_idx IS
  'tag page: articles carrying a tag; the tags foreign key';
COMMENT ON INDEX article_tags_pkey IS
  'tags of an article; one link per article and tag; the articles foreign key';

COMMENT ON INDEX tags_slug_key IS 'tag page: tag by slug; keeps slugs unique';
COMMENT ON INDEX tags_pkey IS 'tag by id';

-- Article page, thread in order:
--   SELECT ... FROM comments WHERE article_id = $1 ORDER BY created_at, id
-- Also the ON DELETE CASCADE from articles.
CREATE INDEX comments_article_created_idx
  ON comments (article_id, created_at, id);
COMMENT ON INDEX comments_article_created_idx IS
  'article page: comments of an article in thread order; the articles foreign key';

-- Replies to a comment, and the parent reference's check when a comment is deleted:
--   SELECT ... FROM comments WHERE parent_id = $1
CREATE INDEX comments_parent_idx
  ON comments (parent_id) WHERE parent_id IS NOT NULL;
COMMENT ON INDEX comments_parent_idx IS
  'replies to a comment; the parent foreign key';
COMMENT ON INDEX comments_id_article_key IS
  'target of comments_parent_fkey: a reply stays on its parent''s article';
COMMENT ON INDEX comments_pkey IS 'comment by id';

-- Revision history and the next revision number:
--   SELECT ... FROM article_revisions WHERE article_id = $1 ORDER BY revision_number DESC
COMMENT ON INDEX article_revisions_pkey IS
  'revision history of an article, newest first; the next revision number (max + 1)';

-- Statistics of an article over a period; the analytics job's upsert key:
--   SELECT ... FROM daily_article_stats WHERE article_id = $1 AND day BETWEEN $2 AND $3
COMMENT ON INDEX daily_article_stats_pkey IS
  'statistics of an article by day over a period; the upsert key of the analytics job';

-- Menus: children of a category in order (NULL parent = top level), and the RESTRICT check
-- when a category is deleted:
--   SELECT ... FROM categories WHERE parent_id = $1 ORDER BY position
CREATE INDEX categories_parent_position_idx
  ON categories (parent_id, position);
COMMENT ON INDEX categories_parent_position_idx IS
  'menus: children of a category in position order; the parent foreign key';
COMMENT ON INDEX categories_slug_key IS 'category page: category by slug; keeps slugs unique';
COMMENT ON INDEX categories_pkey IS 'category by id';

-- Media library, "my uploads", newest first; also the ON DELETE SET NULL from users:
--   SELECT ... FROM media WHERE uploaded_by = $1 ORDER BY created_at DESC
CREATE INDEX media_uploader_created_idx
  ON media (uploaded_by, created_at DESC);
COMMENT ON INDEX media_uploader_created_idx IS
  'media library: uploads of a user, newest first; the users foreign key';
COMMENT ON INDEX media_storage_key_key IS
  'media by object-store key; one row per stored object';
COMMENT ON INDEX media_pkey IS 'media by id';

-- Sign-in: SELECT ... FROM users WHERE lower(email) = lower($1)
COMMENT ON INDEX users_email_lower_key IS
  'sign-in: user by e-mail, case-insensitively; one account per address';
COMMENT ON INDEX users_pkey IS 'user by id';
COMMENT ON INDEX author_profiles_pkey IS 'byline: profile of a user';
