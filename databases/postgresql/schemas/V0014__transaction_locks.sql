-- Transaction locks for decisions a trigger makes before an index could: an e-mail address free
-- (functions/R__user_guard.sql).
--
-- Advisory locks are a shared primitive: any role that may call pg_advisory_lock() can take the
-- bootstrap's lock (and stop every deploy) or hold another user's slug lock for the life of its
-- session. initdb/10-roles.sh revokes every advisory-lock function from PUBLIC and grants them
-- to allixios_owner only; the application reaches this function only through the owner's
-- SECURITY DEFINER triggers, never directly (no EXECUTE). The lock lasts until the end of the
-- transaction, uses the two-key form (a key space apart from the single bigint the bootstrap
-- locks) and derives both keys from SHA-256, so no chosen value can be made to collide with the
-- lock of another. Who holds which lock is not for the platform's roles to see either: pg_locks
-- is revoked from them (initdb/10-roles.sh).
CREATE FUNCTION app_transaction_lock(scope text, lock_key text) RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT pg_advisory_xact_lock(('x' || substr(d.digest, 1, 8))::bit(32)::integer,
                               ('x' || substr(d.digest, 9, 8))::bit(32)::integer)
    FROM (SELECT encode(sha256(convert_to('allixios/' || scope || '/' || lock_key, 'UTF8')), 'hex') AS digest) d
$$;
REVOKE ALL ON FUNCTION app_transaction_lock(text, text) FROM PUBLIC, allixios_app, allixios_readonly;
