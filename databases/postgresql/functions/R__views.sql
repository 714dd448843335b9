-- Views run with the privileges and row-level security of the querying user
-- (security_invoker): a view owned by allixios_owner would otherwise read the tables as the
-- owner, whose policy shows every row.
--
-- CREATE OR REPLACE VIEW can only append columns; renaming or dropping one needs
-- DROP VIEW IF EXISTS first (in this file, before the CREATE).

-- Article cards for listings, with byline and category: every article the caller may see (the
-- listing adds WHERE status = 'published' or the author's filter itself).
CREATE OR REPLACE VIEW article_summaries WITH (security_invoker = true) AS
SELECT a.id,
       a.slug,
       a.title,
       a.excerpt,
       a.status,
       a.author_id,
       p.display_name AS author_display_name,
       a.category_id,
       c.slug AS category_slug,
       c.name AS category_name,
       a.cover_media_id,
       a.reading_time_minutes,
       a.published_at,
       a.updated_at
  FROM articles a
  LEFT JOIN author_profiles p ON p.user_id = a.author_id
  LEFT JOIN categories c ON c.id = a.category_id;

-- A view counts as a table for the default privileges, which would give the platform
-- INSERT/UPDATE/DELETE on it; it is for reading.
REVOKE ALL ON article_summaries FROM allixios_app, allixios_readonly;
GRANT SELECT ON article_summaries TO allixios_app, allixios_readonly;
