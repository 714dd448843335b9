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

-- One account per e-mail address, checked before the row is written, and decided by the unique
-- index of app_private.user_emails (schemas/V0019), which this trigger keeps and no platform role
-- can query or EXPLAIN (a unique B-tree on users (lower(email)) let EXPLAIN ANALYZE of an
-- index-ordered scan count the hidden addresses around one of the caller's choosing).
--
-- The address is checked here first, saying only that it is taken: to a self-signup or to a
-- user changing their own address, the one thing a "one account per address" rule cannot keep
-- from them (README: Threat model). (A unique index on users alone answered an upsert on the
-- address with the other account's row: INSERT ... ON CONFLICT ... DO UPDATE ... WHERE <expression
-- over that row> is evaluated, by PostgreSQL, before row-level security refuses the row.) It
-- answers nothing to a writer the users policy refuses: such a row is refused here with the
-- policy's own error (as well as by the policy: both read the claim per row, which a statement
-- can change between rows with set_config()), and serialises the decision per address with a transaction lock, so two signups
-- with one address never both pass it under READ COMMITTED (app_transaction_lock, V0014); under
-- REPEATABLE READ, whose look cannot see a concurrent signup, the unique index decides, and its
-- refusal is reported the same way. SECURITY DEFINER: it must see every account, and that lock
-- and app_private are the owner's alone. A trigger function cannot be called directly.
CREATE OR REPLACE FUNCTION users_guard_email() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  claimed_role text;
  wanted_address text := lower(NEW.email);
BEGIN
  IF TG_OP = 'UPDATE' AND wanted_address = lower(OLD.email) THEN
    RETURN NEW;
  END IF;
  -- Inside this function current_user is the owner; session_user is who is writing.
  IF session_user <> 'allixios_owner' THEN
    claimed_role := public.app_current_role();
    -- The users insert policy: admins create any account; anyone else only their own, as an
    -- active reader. (An UPDATE reaches this trigger only for a row its policy let through.)
    IF TG_OP = 'INSERT' AND claimed_role <> 'admin'
       AND NOT (claimed_role <> 'anonymous' AND NEW.id = public.app_current_user_id() AND NEW.role = 'reader' AND NEW.status = 'active') THEN
      RAISE EXCEPTION 'new row violates row-level security policy for table "users"'
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM public.app_transaction_lock('users.email', wanted_address);
    IF EXISTS (SELECT 1 FROM app_private.user_emails e WHERE e.address = wanted_address AND e.user_id <> NEW.id) THEN
      RAISE EXCEPTION 'an account with this e-mail address already exists'
        USING ERRCODE = 'unique_violation';
    END IF;
  END IF;
  BEGIN
    INSERT INTO app_private.user_emails AS e (user_id, address) VALUES (NEW.id, wanted_address)
      ON CONFLICT (user_id) DO UPDATE SET address = EXCLUDED.address;
  EXCEPTION WHEN unique_violation THEN
    -- Another account has it (a concurrent transaction's snapshot did not show it above).
    RAISE EXCEPTION 'an account with this e-mail address already exists'
      USING ERRCODE = 'unique_violation';
  END;
  RETURN NEW;
END;
$$;
REVOKE ALL ON FUNCTION users_guard_email() FROM PUBLIC, allixios_app, allixios_readonly;

CREATE OR REPLACE TRIGGER users_guard_email
  BEFORE INSERT OR UPDATE OF email ON users
  FOR EACH ROW EXECUTE FUNCTION users_guard_email();
