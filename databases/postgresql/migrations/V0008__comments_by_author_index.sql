-- allixios:no-transaction
-- A user's comment history (profile page, moderating one user), newest first:
--   SELECT ... FROM comments WHERE author_id = $1 ORDER BY created_at DESC, id DESC LIMIT 20
-- It also lets ON DELETE SET NULL find a deleted account's comments without a full scan.
--
-- comments is a live, busy table by the time this index is wanted, so the index is built
-- CONCURRENTLY (no lock that blocks writes). That cannot run inside a transaction, hence the
-- marker on the first line: the runner sends the statements below one at a time.
--
-- Rerunning after a failure must converge. A CONCURRENTLY build that fails leaves an INVALID
-- index behind, which CREATE ... IF NOT EXISTS would take as done, so the first statement drops
-- whatever a previous attempt left. Semicolons only end statements in this file.
DROP INDEX CONCURRENTLY IF EXISTS comments_author_created_idx;

CREATE INDEX CONCURRENTLY IF NOT EXISTS comments_author_created_idx
  ON comments (author_id, created_at DESC, id DESC);

COMMENT ON INDEX comments_author_created_idx IS
  'profile page: comments of a user, newest first; the users foreign key';
