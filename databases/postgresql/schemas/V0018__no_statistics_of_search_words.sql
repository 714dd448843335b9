-- No planner statistics of the words of hidden articles.
--
-- V0015 took the statistics of articles' text columns away, but search_vector, generated from
-- that very text, kept its own: ANALYZE stores a tsvector column's most common lexemes, and the
-- estimate of `search_vector @@ <query>` reads them under row-level security too. A plain EXPLAIN
-- (nothing executed) of `search_vector @@ 'quas:*'::tsquery` then told which words hidden drafts
-- contain, prefix by prefix (found by a red-team pass). Full-text search goes through
-- search_articles() and its GIN index, which needs no estimate of how common a word is to be
-- chosen (test/bench-postgresql-plans.test.ts checks the plan).
ALTER TABLE articles ALTER COLUMN search_vector SET STATISTICS 0;
SELECT pg_clear_attribute_stats('public', 'articles', 'search_vector', false);
