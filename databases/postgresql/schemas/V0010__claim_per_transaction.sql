-- A claim holds for the transaction that made it, and for no other.
--
-- V0002 read the claim from app.user_id / app.user_role, whatever set them. A value set for the
-- session (set_config(..., false), SET) outlives its transaction: on a pooled connection, one
-- request's statement (a bug, an injection) could claim admin for every later request that
-- claims nothing, since "claims nothing" meant anonymous. The claim now carries the stamp of
-- the transaction that made it, and a claim without the current transaction's stamp raises.
--
-- The platform claims with app_claim(user_id, role) in every transaction that acts for a user
-- (databases/postgresql/README.md). A role default cannot forge a claim either: PostgreSQL
-- refuses ALTER ROLE ... SET app.* to non-superusers, and a stamp cannot be predicted.

-- The current transaction's stamp: its start time in microseconds. Two transactions of one
-- backend do not start in the same microsecond; a value written in one transaction can never
-- equal the stamp of a later one.
CREATE FUNCTION app_transaction_stamp() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN (extract(epoch FROM transaction_timestamp()) * 1000000)::bigint::text;

-- Says who acts in this transaction, checks the claim at once (app_current_role raises on a
-- role the platform does not have, a role without an id, an anonymous claim with an id), and
-- returns the role. Every value is transaction-local (is_local = true): it ends with the
-- transaction. No SET clause: a function with one would undo these settings on return.
CREATE FUNCTION app_claim(user_id uuid, user_role text) RETURNS text
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
  PERFORM pg_catalog.set_config('app.user_id', coalesce(user_id::text, ''), true);
  PERFORM pg_catalog.set_config('app.user_role', coalesce(user_role, ''), true);
  PERFORM pg_catalog.set_config('app.claimed_in', public.app_transaction_stamp(), true);
  RETURN public.app_current_role();
END;
$$;
COMMENT ON FUNCTION app_claim(uuid, text) IS
  'the platform''s claim for the current transaction: SELECT app_claim(user_id, role) after BEGIN';

-- As V0002, plus: a claim not made in this transaction raises instead of being believed.
CREATE OR REPLACE FUNCTION app_current_role() RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
  claimed_role text := nullif(current_setting('app.user_role', true), '');
  claimed_id text := nullif(current_setting('app.user_id', true), '');
BEGIN
  IF (claimed_role IS NOT NULL OR claimed_id IS NOT NULL)
     AND current_setting('app.claimed_in', true) IS DISTINCT FROM public.app_transaction_stamp() THEN
    RAISE EXCEPTION 'app.user_role / app.user_id are set, but not by app_claim() in this transaction'
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'claim with SELECT app_claim(user_id, role) inside each transaction; a claim left in the session (set_config(..., false), SET) is refused';
  END IF;
  claimed_role := coalesce(claimed_role, 'anonymous');
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
