-- Every edit of an article's text or status keeps the version it replaced in
-- article_revisions, numbered 1, 2, ... per article. Edits of other columns (category, cover)
-- are not revisions of the text and are not recorded.
--
-- SECURITY DEFINER: history is the system's. The application has no INSERT on
-- article_revisions (schemas/V0011__system_columns.sql), so no client can forge a revision or
-- its number; this trigger writes it as the owner, under the name of the claiming user
-- (edited_by = app_current_user_id(), NULL for the migrator). A trigger function cannot be
-- called directly, and it only ever copies OLD, a row the writer could update.
-- Concurrent edits of one article are serialised by the row lock of the UPDATE, so max() + 1
-- sees the previous edit's revision; the primary key is the backstop.
CREATE OR REPLACE FUNCTION articles_capture_revision() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  INSERT INTO public.article_revisions (article_id, revision_number, title, excerpt, body, status, edited_by)
  SELECT OLD.id, coalesce(max(r.revision_number), 0) + 1, OLD.title, OLD.excerpt, OLD.body, OLD.status,
         public.app_current_user_id()
    FROM public.article_revisions r
   WHERE r.article_id = OLD.id;
  RETURN NULL;
END;
$$;
REVOKE ALL ON FUNCTION articles_capture_revision() FROM PUBLIC, allixios_app, allixios_readonly;

CREATE OR REPLACE TRIGGER articles_capture_revision
  AFTER UPDATE ON articles
  FOR EACH ROW
  WHEN ((OLD.title, OLD.excerpt, OLD.body, OLD.status) IS DISTINCT FROM (NEW.title, NEW.excerpt, NEW.body, NEW.status))
  EXECUTE FUNCTION articles_capture_revision();
