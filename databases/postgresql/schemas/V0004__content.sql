-- Categories, articles and everything that hangs off an article.

-- Derived columns of articles. A generated column may only call IMMUTABLE functions, and this
-- file creates the table that uses them, so they are versioned, not repeatable: changing one
-- means a new migration that also recomputes the column. SQL-standard bodies (RETURN ...) are
-- parsed here, once: they do not depend on the search_path of whoever writes an article.

-- Weights rank a match in the title (A) above one in the excerpt (B) above one in the body (C).
-- The configuration is named, not taken from default_text_search_config, which a session may
-- change and which would make the function not immutable.
CREATE FUNCTION article_search_vector(title text, excerpt text, body text) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN setweight(to_tsvector('pg_catalog.english'::regconfig, coalesce(title, '')), 'A')
    || setweight(to_tsvector('pg_catalog.english'::regconfig, coalesce(excerpt, '')), 'B')
    || setweight(to_tsvector('pg_catalog.english'::regconfig, coalesce(body, '')), 'C');

-- Minutes at 200 words a minute, rounded up; an empty body reads in 0 minutes.
CREATE FUNCTION article_reading_minutes(body text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ceil(regexp_count(coalesce(body, ''), '[^[:space:]]+') / 200.0)::integer;

CREATE TABLE categories (
  id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  -- Removing a category that still has children would orphan a subtree: move them first.
  parent_id   uuid        REFERENCES categories (id) ON DELETE RESTRICT,
  slug        text        NOT NULL,
  name        text        NOT NULL,
  description text,
  -- Order among siblings in menus.
  position    integer     NOT NULL DEFAULT 0,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT categories_slug_key UNIQUE (slug),
  CONSTRAINT categories_slug_format CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND char_length(slug) <= 120),
  CONSTRAINT categories_name_present CHECK (btrim(name) <> '' AND char_length(name) <= 100),
  CONSTRAINT categories_position_not_negative CHECK (position >= 0),
  -- The direct case; longer cycles are refused by functions/R__category_tree.sql.
  CONSTRAINT categories_not_own_parent CHECK (parent_id <> id)
);

CREATE TABLE articles (
  id                   uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  -- Left empty (or NULL) on insert, it is generated from the title (R__article_slugs.sql). It
  -- does not follow later title changes: published URLs stay stable.
  slug                 text        NOT NULL,
  -- A draft may start untitled; publishing requires a title (articles_published_complete).
  title                text        NOT NULL DEFAULT '',
  excerpt              text,
  body                 text        NOT NULL DEFAULT '',
  status               text        NOT NULL DEFAULT 'draft',
  -- An author's articles must be reassigned before the account can be deleted.
  author_id            uuid        NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
  -- A category with articles cannot disappear from under them (published ones need one).
  category_id          uuid        REFERENCES categories (id) ON DELETE RESTRICT,
  -- The cover is decoration: deleting the image leaves the article without one.
  cover_media_id       uuid        REFERENCES media (id) ON DELETE SET NULL,
  reading_time_minutes integer     NOT NULL GENERATED ALWAYS AS (article_reading_minutes(body)) STORED,
  search_vector        tsvector    NOT NULL GENERATED ALWAYS AS (article_search_vector(title, excerpt, body)) STORED,
  published_at         timestamptz,
  created_at           timestamptz NOT NULL DEFAULT now(),
  updated_at           timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT articles_status_check CHECK (status IN ('draft', 'review', 'published', 'archived')),
  CONSTRAINT articles_slug_key UNIQUE (slug),
  CONSTRAINT articles_slug_format CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND char_length(slug) <= 120),
  CONSTRAINT articles_title_length CHECK (char_length(title) <= 300),
  CONSTRAINT articles_excerpt_length CHECK (char_length(excerpt) <= 1000),
  CONSTRAINT articles_published_at_required CHECK (status <> 'published' OR published_at IS NOT NULL),
  -- publish_article() checks the same with a message naming what is missing; this constraint
  -- holds for every other path too (a direct status update, an edit of a published article).
  CONSTRAINT articles_published_complete CHECK (
    status <> 'published' OR (btrim(title) <> '' AND btrim(body) <> '' AND category_id IS NOT NULL)
  )
);

CREATE TABLE tags (
  id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  slug       text        NOT NULL,
  name       text        NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT tags_slug_key UNIQUE (slug),
  CONSTRAINT tags_slug_format CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND char_length(slug) <= 120),
  CONSTRAINT tags_name_present CHECK (btrim(name) <> '' AND char_length(name) <= 100)
);

CREATE TABLE article_tags (
  -- A link means nothing without either end.
  article_id uuid        NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
  tag_id     uuid        NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (article_id, tag_id)
);

-- Append-only history: each row is the version of an article that an edit replaced, written by
-- the AFTER UPDATE trigger in functions/R__article_revisions.sql.
CREATE TABLE article_revisions (
  -- The history belongs to the article and goes with it.
  article_id      uuid        NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
  revision_number integer     NOT NULL,
  title           text        NOT NULL,
  excerpt         text,
  body            text        NOT NULL,
  status          text        NOT NULL,
  -- Who made the edit that replaced this version; NULL for the migrator, or once the editor's
  -- account is deleted (the history stays).
  edited_by       uuid        REFERENCES users (id) ON DELETE SET NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (article_id, revision_number),
  CONSTRAINT article_revisions_number_positive CHECK (revision_number > 0),
  CONSTRAINT article_revisions_status_check CHECK (status IN ('draft', 'review', 'published', 'archived'))
);

CREATE TABLE comments (
  id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  -- Comments go with their article.
  article_id uuid        NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
  -- A deleted account leaves its comments anonymous so the threads around them survive.
  author_id  uuid        REFERENCES users (id) ON DELETE SET NULL,
  parent_id  uuid,
  body       text        NOT NULL,
  -- deleted: withdrawn by its author but kept so replies keep their context; hidden: by a
  -- moderator.
  status     text        NOT NULL DEFAULT 'visible',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT comments_body_present CHECK (btrim(body) <> '' AND char_length(body) <= 10000),
  CONSTRAINT comments_status_check CHECK (status IN ('visible', 'hidden', 'deleted')),
  CONSTRAINT comments_not_own_parent CHECK (parent_id <> id),
  -- Target of the parent reference below: a reply must be on its parent's article.
  CONSTRAINT comments_id_article_key UNIQUE (id, article_id),
  -- NO ACTION, checked at the end of the statement: deleting an article removes its whole
  -- thread in one cascade, while deleting a single comment that has replies is refused, so one
  -- user cannot erase other users' replies (withdraw it with status 'deleted' instead).
  CONSTRAINT comments_parent_fkey FOREIGN KEY (parent_id, article_id)
    REFERENCES comments (id, article_id) ON DELETE NO ACTION
);

-- Daily roll-up written by the analytics job (one upsert per article and day).
CREATE TABLE daily_article_stats (
  -- Statistics of a deleted article have nothing left to describe.
  article_id      uuid    NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
  day             date    NOT NULL,
  views           bigint  NOT NULL DEFAULT 0,
  unique_visitors bigint  NOT NULL DEFAULT 0,
  comments        integer NOT NULL DEFAULT 0,
  PRIMARY KEY (article_id, day),
  CONSTRAINT daily_article_stats_counts_not_negative CHECK (views >= 0 AND unique_visitors >= 0 AND comments >= 0),
  CONSTRAINT daily_article_stats_visitors_within_views CHECK (unique_visitors <= views)
);
