-- What a comment's author may change besides its body. The policies let authors update their
-- own comments; this trigger keeps them from undoing moderation: only editors and admins hide a
-- comment or bring one back, an author may only withdraw (visible -> deleted), and a withdrawn
-- or hidden comment is no longer its author's to edit (a hidden comment rewritten by its author
-- would come back changed when a moderator restores it). Where a comment sits (article, parent,
-- author) never changes (the application has no UPDATE on those columns either); referential
-- actions (a deleted account nulls author_id) run as the migrator and pass.
CREATE OR REPLACE FUNCTION comments_guard_moderation() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  IF public.app_is_migrator() THEN
    RETURN NEW;
  END IF;
  IF NEW.article_id IS DISTINCT FROM OLD.article_id
     OR NEW.parent_id IS DISTINCT FROM OLD.parent_id
     OR NEW.author_id IS DISTINCT FROM OLD.author_id THEN
    RAISE EXCEPTION 'a comment''s article, parent and author do not change'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF OLD.status <> 'visible' AND NOT public.app_is_staff() THEN
    RAISE EXCEPTION 'comment % is %: only editors and admins change it', OLD.id, OLD.status
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF NEW.status IS DISTINCT FROM OLD.status
     AND NOT public.app_is_staff()
     AND NOT (OLD.status = 'visible' AND NEW.status = 'deleted') THEN
    RAISE EXCEPTION 'only editors and admins moderate comments (% -> %); app.user_role is %',
        OLD.status, NEW.status, public.app_current_role()
      USING ERRCODE = 'insufficient_privilege',
            HINT = 'an author may only withdraw a visible comment (status deleted)';
  END IF;
  RETURN NEW;
END;
$$;

CREATE OR REPLACE TRIGGER comments_guard_moderation
  BEFORE UPDATE ON comments
  FOR EACH ROW EXECUTE FUNCTION comments_guard_moderation();
