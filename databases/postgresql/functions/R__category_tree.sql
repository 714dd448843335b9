-- Categories form a tree: a category may not be moved under itself or under one of its own
-- descendants (the CHECK categories_not_own_parent only catches the direct case).
CREATE OR REPLACE FUNCTION categories_guard_tree() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  -- No parent: nothing to walk. Its own parent: the CHECK categories_not_own_parent reports it.
  IF NEW.parent_id IS NULL OR NEW.parent_id = NEW.id THEN
    RETURN NEW;
  END IF;
  -- Walk up from the new parent; UNION (not UNION ALL) stops even on a cycle made before this
  -- trigger existed.
  IF EXISTS (
    WITH RECURSIVE ancestors (id, parent_id) AS (
      SELECT c.id, c.parent_id FROM public.categories c WHERE c.id = NEW.parent_id
      UNION
      SELECT c.id, c.parent_id FROM public.categories c JOIN ancestors up ON c.id = up.parent_id
    )
    SELECT 1 FROM ancestors WHERE ancestors.id = NEW.id
  ) THEN
    RAISE EXCEPTION 'category % cannot be placed under %: that category is inside it', NEW.id, NEW.parent_id
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END;
$$;

CREATE OR REPLACE TRIGGER categories_guard_tree
  BEFORE INSERT OR UPDATE OF parent_id ON categories
  FOR EACH ROW EXECUTE FUNCTION categories_guard_tree();
