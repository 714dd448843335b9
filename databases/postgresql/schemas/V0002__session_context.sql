-- Who the application says is acting, read from the transaction's settings:
--
--   SELECT set_config('app.user_id', '<uuid>', true), set_config('app.user_role', 'author', true);
--
-- The row-level security policies (V0007) and the guard triggers (functions/) depend on these
-- functions, so they live in a versioned migration: on a fresh database every versioned
-- migration runs before any repeatable one. STABLE: the settings do not change within a
-- statement. PARALLEL SAFE: custom settings are copied to parallel workers, and an UNSAFE
-- function in a policy would keep every query on the protected tables from running in parallel.
-- No function here reads a table, so none needs a pinned search_path.

-- The role the application claims for the current transaction, after checking the whole
-- claim. Unset (or reset to '' at the end of the transaction that set it) means anonymous.
-- Every policy reads this function, so every contradiction raises here, whichever branch of a
-- policy would otherwise apply: a role value the platform does not have (a typo such as
-- 'Editor' must fail loudly, not behave like anonymous or anything else), a signed-in role
-- without a user id (it would match no row of its own and look like "not allowed"), an
-- anonymous transaction that names a user, and a user id that is not a uuid.
CREATE FUNCTION app_current_role() RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
  claimed_role text := coalesce(nullif(current_setting('app.user_role', true), ''), 'anonymous');
  claimed_id text := nullif(current_setting('app.user_id', true), '');
BEGIN
  IF claimed_role NOT IN ('anonymous', 'reader', 'author', 'editor', 'admin') THEN
    RAISE EXCEPTION 'app.user_role is %, which is not a role of the platform', quote_literal(claimed_role)
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'set app.user_role to anonymous, reader, author, editor or admin, or leave it unset for anonymous';
  END IF;
  IF claimed_role = 'anonymous' AND claimed_id IS NOT NULL THEN
    RAISE EXCEPTION 'app.user_id is set (%) but app.user_role is anonymous', quote_literal(claimed_id)
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'set app.user_role to the user''s role, or leave both settings unset';
  END IF;
  IF claimed_role <> 'anonymous' AND claimed_id IS NULL THEN
    RAISE EXCEPTION 'app.user_role is % but app.user_id is not set', claimed_role
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'set app.user_id to the acting user''s id in the same transaction';
  END IF;
  -- A malformed id raises invalid_text_representation here.
  PERFORM claimed_id::uuid;
  RETURN claimed_role;
END;
$$;

-- The user the application says is acting (checked by app_current_role); NULL for anonymous.
CREATE FUNCTION app_current_user_id() RETURNS uuid
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
BEGIN
  IF public.app_current_role() = 'anonymous' THEN
    RETURN NULL;
  END IF;
  RETURN current_setting('app.user_id')::uuid;
END;
$$;

-- Editors and admins see and change all content.
CREATE FUNCTION app_is_staff() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
RETURN public.app_current_role() IN ('editor', 'admin');

-- The migrator (allixios_owner) runs data migrations and owns the tables; the guard triggers
-- let it through as its RLS policy does. Referential actions (ON DELETE SET NULL, CASCADE) run
-- as the table owner too, which is how a user's deletion may null a comment's author.
CREATE FUNCTION app_is_migrator() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
RETURN current_user = 'allixios_owner';
