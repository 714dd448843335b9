-- updated_at follows every change, whatever the client sends: the value is the time of the
-- transaction that made the change (now()), the same for every row it touched.
--
-- Repeatable: re-applied whenever this file changes. CREATE OR REPLACE keeps it idempotent;
-- a trigger that is renamed here must be dropped explicitly (DROP TRIGGER IF EXISTS).

CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END;
$$;

CREATE OR REPLACE TRIGGER users_set_updated_at
  BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE OR REPLACE TRIGGER author_profiles_set_updated_at
  BEFORE UPDATE ON author_profiles FOR EACH ROW EXECUTE FUNCTION set_updated_at();
-- Only what a user edits: the system keeps media.public_use and comments.on_published_article
-- current (schemas/V0019), which is no edit of the file or the comment.
CREATE OR REPLACE TRIGGER media_set_updated_at
  BEFORE UPDATE OF mime_type, size_bytes, width, height, alt_text ON media FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE OR REPLACE TRIGGER categories_set_updated_at
  BEFORE UPDATE ON categories FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE OR REPLACE TRIGGER articles_set_updated_at
  BEFORE UPDATE ON articles FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE OR REPLACE TRIGGER comments_set_updated_at
  BEFORE UPDATE OF body, status ON comments FOR EACH ROW EXECUTE FUNCTION set_updated_at();
