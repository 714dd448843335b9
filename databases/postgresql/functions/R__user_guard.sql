-- Only admins (and the migrator, which creates the first admin) change an account's role or
-- status. The policies let users update their own row (name, e-mail); without this guard a
-- reader could make themselves admin, or lift their own suspension.
CREATE OR REPLACE FUNCTION users_guard_role_and_status() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  IF public.app_is_migrator() OR public.app_current_role() = 'admin' THEN
    RETURN NEW;
  END IF;
  IF NEW.role IS DISTINCT FROM OLD.role OR NEW.status IS DISTINCT FROM OLD.status THEN
    RAISE EXCEPTION 'only admins change a user''s role or status; app.user_role is %', public.app_current_role()
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END;
$$;

CREATE OR REPLACE TRIGGER users_guard_role_and_status
  BEFORE UPDATE OF role, status ON users
  FOR EACH ROW EXECUTE FUNCTION users_guard_role_and_status();
