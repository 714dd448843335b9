-- Categories form a tree: a category may not be moved under itself or under one of its own
-- descendants (the CHECK categories_not_own_parent only catches the direct case).
--
-- Concurrent moves: two transactions making X the child of Y and Y the child of X each see the
-- other's category unmoved, and a check that only reads would let both commit a cycle. The walk
-- up from the new parent locks every ancestor it passes FOR SHARE while the UPDATE itself holds
-- the moved row: the two moves then wait on each other and PostgreSQL aborts one of them
-- (deadlock_detected, 40P01, retryable); under REPEATABLE READ or SERIALIZABLE a lock on a row
-- changed since the snapshot fails with 40001. Whichever commits, the tree stays a tree. Only
-- editors, admins and the migrator write categories (their update policy allows the lock).
CREATE OR REPLACE FUNCTION categories_guard_tree() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  ancestor uuid := NEW.parent_id;
  next_ancestor uuid;
  walked uuid[] := '{}';
BEGIN
  -- No parent: nothing to walk. Its own parent: the CHECK categories_not_own_parent reports it.
  IF NEW.parent_id IS NULL OR NEW.parent_id = NEW.id THEN
    RETURN NEW;
  END IF;
  WHILE ancestor IS NOT NULL LOOP
    IF ancestor = NEW.id THEN
      RAISE EXCEPTION 'category % cannot be placed under %: that category is inside it', NEW.id, NEW.parent_id
        USING ERRCODE = 'check_violation';
    END IF;
    -- A cycle made before this trigger existed, elsewhere in the tree: stop rather than loop.
    EXIT WHEN ancestor = ANY (walked);
    walked := walked || ancestor;
    SELECT c.parent_id INTO next_ancestor FROM public.categories c WHERE c.id = ancestor FOR SHARE;
    -- A parent that does not exist: the foreign key reports it.
    EXIT WHEN NOT FOUND;
    ancestor := next_ancestor;
  END LOOP;
  RETURN NEW;
END;
$$;

CREATE OR REPLACE TRIGGER categories_guard_tree
  BEFORE INSERT OR UPDATE OF parent_id ON categories
  FOR EACH ROW EXECUTE FUNCTION categories_guard_tree();
