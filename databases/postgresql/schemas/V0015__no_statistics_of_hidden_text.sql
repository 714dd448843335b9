-- No planner statistics of text that row-level security hides.
--
-- The planner estimates a condition from the column's statistics (most common values,
-- histogram bounds) whenever its operator is leakproof, and text's =, <, > are: under
-- row-level security too (pg_stats hides those statistics; a plain EXPLAIN does not). An
-- attacker read hidden slugs and e-mail addresses off EXPLAIN's estimates alone, bisecting
-- `EXPLAIN SELECT 1 FROM articles WHERE slug < $1` without executing anything.
--
-- The text of rows some claim may not see gets no statistics: ANALYZE skips a column whose
-- target is 0, and what an earlier ANALYZE kept is cleared. No query of the platform estimates
-- on these columns: a slug or an address is looked up through a unique index (one row, known
-- without statistics), and text is searched through search_vector. Ids, statuses and times keep
-- their statistics, which the plans of the hot queries need (README: Threat model says what
-- they can tell).
ALTER TABLE articles ALTER COLUMN slug SET STATISTICS 0,
                     ALTER COLUMN title SET STATISTICS 0,
                     ALTER COLUMN excerpt SET STATISTICS 0,
                     ALTER COLUMN body SET STATISTICS 0;
ALTER TABLE article_revisions ALTER COLUMN title SET STATISTICS 0,
                              ALTER COLUMN excerpt SET STATISTICS 0,
                              ALTER COLUMN body SET STATISTICS 0;
ALTER TABLE comments ALTER COLUMN body SET STATISTICS 0;
ALTER TABLE users ALTER COLUMN email SET STATISTICS 0,
                  ALTER COLUMN display_name SET STATISTICS 0;
ALTER TABLE media ALTER COLUMN alt_text SET STATISTICS 0,
                  ALTER COLUMN storage_key SET STATISTICS 0;
-- The expression index keeps statistics of its own: lower(email).
ALTER INDEX users_email_lower_key ALTER COLUMN 1 SET STATISTICS 0;

SELECT pg_clear_attribute_stats('public', t.relname, t.attname, false)
  FROM (VALUES ('articles', 'slug'), ('articles', 'title'), ('articles', 'excerpt'), ('articles', 'body'),
               ('article_revisions', 'title'), ('article_revisions', 'excerpt'), ('article_revisions', 'body'),
               ('comments', 'body'), ('users', 'email'), ('users', 'display_name'),
               ('media', 'alt_text'), ('media', 'storage_key'), ('users_email_lower_key', 'lower')) t(relname, attname);
