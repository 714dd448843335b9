-- Who may do what to each table, written out in full. V0001's default privileges already gave
-- every new table SELECT, INSERT, UPDATE, DELETE to allixios_app and SELECT to
-- allixios_readonly; this file restates the matrix per table and narrows it where the platform
-- needs less. Which rows a granted statement reaches is row-level security's job (V0007).
-- (The tables are listed by name: pg_stat_statements' view, owned by the superuser, also lives
-- in public and is none of the migrator's business.)
REVOKE ALL ON users, author_profiles, media, categories, articles, tags, article_tags,
              article_revisions, comments, daily_article_stats
  FROM allixios_app, allixios_readonly;

-- The platform: full row access where users create, edit and remove content.
GRANT SELECT, INSERT, UPDATE, DELETE
  ON users, author_profiles, media, categories, articles, tags, comments
  TO allixios_app;
-- A tag link is added or removed, never edited.
GRANT SELECT, INSERT, DELETE ON article_tags TO allixios_app;
-- History is append-only: rows arrive through the revision trigger, which runs as the editing
-- user; they leave only with their article (the cascade runs as the table owner).
GRANT SELECT, INSERT ON article_revisions TO allixios_app;
-- The analytics job upserts (INSERT ... ON CONFLICT DO UPDATE); rows leave with their article.
GRANT SELECT, INSERT, UPDATE ON daily_article_stats TO allixios_app;

-- Reporting reads everything except what identifies a person: no e-mail addresses. Counting
-- and grouping users by role, status and sign-up date works on the granted columns.
GRANT SELECT
  ON author_profiles, media, categories, articles, tags, article_tags,
     article_revisions, comments, daily_article_stats
  TO allixios_readonly;
GRANT SELECT (id, display_name, role, status, created_at, updated_at) ON users TO allixios_readonly;
