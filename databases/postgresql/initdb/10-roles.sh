#!/usr/bin/env bash
# Creates the platform's roles in a fresh cluster, and hardens what every role may reach.
#
# The official postgres image runs every executable /docker-entrypoint-initdb.d/*.sh once, when
# it initialises an empty data directory: as the postgres OS user, after it created
# $POSTGRES_DB, against its temporary server on the Unix socket (peer authentication, see
# pg_hba.conf). psql honours PGHOST/PGPORT/PGUSER/PGPASSWORD, so the same script also runs
# against a TCP server (the tests do exactly that). It converges: run it again on an existing
# volume (`kubectl exec <pod> -- bash /docker-entrypoint-initdb.d/10-roles.sh`) to bring older
# clusters to the same hardening.
#
# Roles:
#   $POSTGRES_USER     the superuser the image created (postgres); its verifier comes from the file too.
#   allixios_owner     owns $POSTGRES_DB and its public schema; the bootstrap migrates as it.
#   allixios_app       the platform: no superuser, no BYPASSRLS, so row-level security applies.
#   allixios_readonly  reporting; read-only by default even where a grant would allow writes.
#
# Table-level grants (SELECT/INSERT/... to allixios_app and allixios_readonly) are not made
# here: the tables do not exist yet; the migrations that create them grant on them.
#
# Passwords never reach the server: the role verifiers file (ALLIXIOS_ROLE_VERIFIERS_FILE,
# rendered by the Pulumi program from databases/postgresql/initdb/role-verifiers into the
# engine's Secret) holds SCRAM-SHA-256 verifiers, which is what PostgreSQL stores. A verifier
# is still what an offline guess is tested against, so this session also keeps its statements
# out of pg_stat_statements and the server log. Values are read by psql from its own
# environment (\getenv) and quoted as literals (:'name'): nothing passes through the shell
# into SQL, nor onto a command line (`ps`). \getenv needs psql 15 or newer (the image ships 18).
set -euo pipefail

readonly SCRIPT_NAME=10-roles.sh
readonly VERIFIERS_FILE="${ALLIXIOS_ROLE_VERIFIERS_FILE:-/etc/postgresql/secrets/role-verifiers}"
readonly PLATFORM_ROLES=(allixios_owner allixios_app allixios_readonly)
# What PostgreSQL stores for a SCRAM password: SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>.
readonly VERIFIER_FORMAT='^SCRAM-SHA-256\$[0-9]+:[A-Za-z0-9+/]+={0,2}\$[A-Za-z0-9+/]+={0,2}:[A-Za-z0-9+/]+={0,2}$'

fail() {
  echo "${SCRIPT_NAME}: $*" >&2
  echo "${SCRIPT_NAME}: no role was created or changed." >&2
  exit 1
}

for name in POSTGRES_USER POSTGRES_DB; do
  [[ -n "${!name:-}" ]] || fail "environment variable ${name} is missing or empty; it must hold the superuser the entrypoint connects as (POSTGRES_USER) and the database it created (POSTGRES_DB)."
done
readonly ROLES=("${POSTGRES_USER}" "${PLATFORM_ROLES[@]}")
[[ "${VERIFIERS_FILE}" == /* ]] || fail "the role verifiers file ${VERIFIERS_FILE} is not an absolute path; the server reads it again on later deploys (allixios_credentials), from its own working directory."

[[ -r "${VERIFIERS_FILE}" ]] || fail "the role verifiers file ${VERIFIERS_FILE} cannot be read; it must hold one line '<role> SCRAM-SHA-256\$...' for each of ${ROLES[*]} (the engine's secret file initdb/role-verifiers; ALLIXIOS_ROLE_VERIFIERS_FILE names another path)."

# Lines are '<role> <verifier>'; blank lines and '#' comments are skipped. A value is never
# echoed: a password put there by mistake must not end up in a log either.
declare -A VERIFIER=()
line_number=0
while IFS= read -r line || [[ -n "${line}" ]]; do
  line_number=$((line_number + 1))
  [[ "${line}" =~ ^[[:space:]]*(#.*)?$ ]] && continue
  read -r role value extra <<<"${line}"
  [[ " ${ROLES[*]} " == *" ${role} "* ]] || fail "line ${line_number} of ${VERIFIERS_FILE} does not start with one of ${ROLES[*]}."
  [[ -z "${extra:-}" ]] || fail "line ${line_number} of ${VERIFIERS_FILE} (${role}) has more than a role and a verifier."
  [[ -z "${VERIFIER[${role}]:-}" ]] || fail "line ${line_number} of ${VERIFIERS_FILE} gives ${role} a second verifier."
  [[ "${value:-}" =~ ${VERIFIER_FORMAT} ]] || fail "line ${line_number} of ${VERIFIERS_FILE}: the value for ${role} is not a SCRAM-SHA-256 verifier (expected SCRAM-SHA-256\$<iterations>:<salt>\$<StoredKey>:<ServerKey>). The file must hold verifiers, never passwords."
  VERIFIER[${role}]="${value}"
done <"${VERIFIERS_FILE}"
for role in "${ROLES[@]}"; do
  [[ -n "${VERIFIER[${role}]:-}" ]] || fail "${VERIFIERS_FILE} has no verifier for ${role}."
done

# One transaction: a failure leaves no half-configured roles behind. The quoted heredoc keeps
# the shell from expanding anything inside the SQL.
ALLIXIOS_SUPERUSER_VERIFIER="${VERIFIER[${POSTGRES_USER}]}" \
ALLIXIOS_ROLE_VERIFIERS_PATH="${VERIFIERS_FILE}" \
ALLIXIOS_OWNER_VERIFIER="${VERIFIER[allixios_owner]}" \
ALLIXIOS_APP_VERIFIER="${VERIFIER[allixios_app]}" \
ALLIXIOS_READONLY_VERIFIER="${VERIFIER[allixios_readonly]}" \
psql --no-psqlrc --no-password --single-transaction \
  --set=ON_ERROR_STOP=1 \
  --username="${POSTGRES_USER}" \
  --dbname="${POSTGRES_DB}" <<'SQL'
\getenv database POSTGRES_DB
\getenv superuser POSTGRES_USER
\getenv superuser_verifier ALLIXIOS_SUPERUSER_VERIFIER
\getenv verifiers_file ALLIXIOS_ROLE_VERIFIERS_PATH
\getenv owner_verifier ALLIXIOS_OWNER_VERIFIER
\getenv app_verifier ALLIXIOS_APP_VERIFIER
\getenv readonly_verifier ALLIXIOS_READONLY_VERIFIER

-- Nothing this session sends is kept: pg_stat_statements records utility statements (ALTER
-- ROLE ... PASSWORD with its literal) by default, and a failing or slow statement is logged
-- with its text. Superuser-only settings, for this session.
SET pg_stat_statements.track_utility = off;
SET log_statement = 'none';
SET log_min_duration_statement = -1;
SET log_min_error_statement = panic;

-- CREATE only when missing, then ALTER to the wanted attributes and password: rerunning the
-- script (by hand, to rotate passwords) converges instead of failing on existing roles.
SELECT format('CREATE ROLE %I', wanted.role_name)
  FROM unnest(ARRAY['allixios_owner', 'allixios_app', 'allixios_readonly']) AS wanted(role_name)
 WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = wanted.role_name)
\gexec

-- The owner migrates the schema but administers nothing else: no new databases or roles.
ALTER ROLE allixios_owner WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  PASSWORD :'owner_verifier';
-- The application must never escape row-level security: no superuser, no BYPASSRLS, and it
-- owns no table (owners are exempt from RLS unless FORCE ROW LEVEL SECURITY).
ALTER ROLE allixios_app WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  PASSWORD :'app_verifier';
ALTER ROLE allixios_readonly WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  PASSWORD :'readonly_verifier';
-- The superuser's password as the stack has it (the image hashed it with a salt of its own at
-- initdb; the same password, now with the verifier a rotation compares against).
ALTER ROLE :"superuser" PASSWORD :'superuser_verifier';
-- A second lock besides the grants: a write grant given by mistake still fails unless the
-- session explicitly asks for a read-write transaction.
ALTER ROLE allixios_readonly SET default_transaction_read_only = on;

-- Resource limits (databases/postgresql/README.md, "Resource limits"). A connection limit and
-- temp_file_limit hold: a role cannot raise them for itself. The timeouts are defaults a
-- session of the role can still change (SET, or ALTER ROLE itself SET): they bound the
-- platform's mistakes (a forgotten transaction, a runaway query), not an attacker's session.
-- 150 + 10 + 10 of max_connections = 200 leaves room for maintenance and monitoring.
ALTER ROLE allixios_app CONNECTION LIMIT 150;
ALTER ROLE allixios_app SET statement_timeout = '15s';
ALTER ROLE allixios_app SET lock_timeout = '5s';
ALTER ROLE allixios_app SET idle_in_transaction_session_timeout = '30s';
ALTER ROLE allixios_app SET transaction_timeout = '60s';
ALTER ROLE allixios_app SET temp_file_limit = '512MB';
ALTER ROLE allixios_readonly CONNECTION LIMIT 10;
ALTER ROLE allixios_readonly SET statement_timeout = '5min';
ALTER ROLE allixios_readonly SET lock_timeout = '10s';
ALTER ROLE allixios_readonly SET idle_in_transaction_session_timeout = '10min';
ALTER ROLE allixios_readonly SET transaction_timeout = '30min';
ALTER ROLE allixios_readonly SET temp_file_limit = '2GB';
-- The bootstrap: index builds and data migrations legitimately run long (no statement timeout;
-- the bootstrap sets its own lock timeout), a handful of sessions at most.
ALTER ROLE allixios_owner CONNECTION LIMIT 10;

-- The owner owns the database and the schema the migrations fill (objects it creates are its).
ALTER DATABASE :"database" OWNER TO allixios_owner;
ALTER SCHEMA public OWNER TO allixios_owner;

-- Only the platform's roles may connect, and only to the platform's database: postgres and
-- template1 are the superuser's (a role created later gets nothing by default).
REVOKE CONNECT, TEMPORARY ON DATABASE postgres FROM PUBLIC;
REVOKE CONNECT, TEMPORARY ON DATABASE template1 FROM PUBLIC;
REVOKE CONNECT ON DATABASE :"database" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"database" TO allixios_owner, allixios_app, allixios_readonly;
-- No temporary tables for the platform's roles: nothing needs them, and a temporary table is
-- the way to shadow a real one for a function that searches pg_temp first.
REVOKE TEMPORARY ON DATABASE :"database" FROM PUBLIC;

-- Nobody but the owner creates objects in public (PostgreSQL 15+ already withholds CREATE from
-- PUBLIC; revoked explicitly so the guarantee does not depend on the version's default), and
-- only the platform's roles may even look it up.
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO allixios_app, allixios_readonly;

-- Shared primitives no platform role needs, and what each would give an attacker holding one:
--   advisory locks   take the bootstrap's lock (no deploy gets through) or another writer's slug
--                    or e-mail lock for a whole session; the owner keeps them (the bootstrap's
--                    lock, and the triggers that lock through app_transaction_lock)
--   large objects    storage outside every table, with no row-level security and no quota
--   pg_notify        a channel between sessions (the NOTIFY statement itself cannot be revoked;
--                    postgresql.conf bounds its queue)
--   pg_terminate_backend, pg_cancel_backend   end or cancel any session of one's own role, the
--                    platform's other requests included
--   pg_logical_emit_message   writes records of any size into the WAL, outside every table and
--                    quota, from a read-only transaction too
-- PostgreSQL grants all of these to PUBLIC; EXECUTE is revoked in this database only (pg_proc
-- is per database).
SELECT format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', p.oid::regprocedure),
       CASE WHEN p.proname ~ '^pg_(try_)?advisory_' THEN format('GRANT EXECUTE ON FUNCTION %s TO allixios_owner', p.oid::regprocedure) END
  FROM pg_catalog.pg_proc p
 WHERE p.pronamespace = 'pg_catalog'::regnamespace
   AND (p.proname ~ '^pg_(try_)?advisory_'
        OR p.proname IN ('lo_creat', 'lo_create', 'lo_from_bytea', 'lo_import', 'lo_put', 'pg_notify',
                         'pg_terminate_backend', 'pg_cancel_backend', 'pg_logical_emit_message'))
\gexec

-- Statistics and monitoring views are for monitoring, not for the platform's roles: they count
-- and show what row-level security hides. pg_stat_xact_user_tables counted the rows a SECURITY
-- DEFINER search fetched before filtering them (a word oracle on other users' drafts),
-- pg_stat_user_tables their updates, pg_locks (and pg_isolation_test_session_is_blocked) whose
-- lock another transaction waits for, and
-- pg_stat_activity / pg_stat_statements the statements of every session of one's own role.
-- Revoked from PUBLIC, views and the functions behind them; granted back to the owner (the
-- bootstrap names a lock's holder) and to pg_monitor, the role monitoring agents are given.
-- (\gexec runs each column of each row as a statement: the revoke, then the grant.)
SELECT format('REVOKE ALL ON %s FROM PUBLIC', c.oid::regclass),
       format('GRANT SELECT ON %s TO allixios_owner, pg_monitor', c.oid::regclass)
  FROM pg_catalog.pg_class c
 WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relkind = 'v'
   AND (c.relname ~ '^pg_stat(io)?_' OR c.relname = 'pg_locks')
\gexec
SELECT format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', p.oid::regprocedure),
       format('GRANT EXECUTE ON FUNCTION %s TO allixios_owner, pg_monitor', p.oid::regprocedure)
  FROM pg_catalog.pg_proc p
 WHERE p.pronamespace = 'pg_catalog'::regnamespace
   AND (p.proname ~ '^pg_stat_get_'
        OR p.proname IN ('pg_lock_status', 'pg_blocking_pids', 'pg_safe_snapshot_blocking_pids', 'pg_isolation_test_session_is_blocked'))
\gexec

-- postgresql.conf preloads pg_stat_statements; creating the extension needs a superuser, which
-- the bootstrap's migrator is not.
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
-- Its view shows the statements of one's own role to every session of it: monitoring's, as above.
REVOKE ALL ON pg_stat_statements, pg_stat_statements_info FROM PUBLIC;
GRANT SELECT ON pg_stat_statements, pg_stat_statements_info TO allixios_owner, pg_monitor;
SELECT format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', p.oid::regprocedure),
       format('GRANT EXECUTE ON FUNCTION %s TO allixios_owner, pg_monitor', p.oid::regprocedure)
  FROM pg_catalog.pg_proc p
 WHERE p.proname IN ('pg_stat_statements', 'pg_stat_statements_info')
\gexec

-- Password rotation (README "Rotating a password"): the bootstrap, which runs as allixios_owner
-- and may not change another role's password, brings every role to the verifiers of the mounted
-- Secret through these functions. They run as the superuser but take no verifier from their
-- caller: they read the file this script read (a Secret the kubelet refreshes after a rotation)
-- and check it is the file the bootstrap was given (its SHA-256), so the owner can only make the
-- server agree with the stack, never set a password of its choosing. No verifier ever comes back
-- from them, not even in an error's text. Only allixios_owner may call them.
CREATE SCHEMA IF NOT EXISTS allixios_credentials AUTHORIZATION :"superuser";
REVOKE ALL ON SCHEMA allixios_credentials FROM PUBLIC;
GRANT USAGE ON SCHEMA allixios_credentials TO allixios_owner;
COMMENT ON SCHEMA allixios_credentials IS 'Brings the roles to the verifiers of the mounted Secret (initdb/10-roles.sh); the bootstrap''s, after a password rotation';

-- Where the file is and which roles it may name, fixed when this script ran.
SELECT format('CREATE OR REPLACE FUNCTION allixios_credentials.verifiers_file() RETURNS text LANGUAGE sql IMMUTABLE RETURN %L', :'verifiers_file')
\gexec
SELECT format('CREATE OR REPLACE FUNCTION allixios_credentials.managed_roles() RETURNS name[] LANGUAGE sql IMMUTABLE RETURN ARRAY[%L, %L, %L, %L]::name[]',
              :'superuser', 'allixios_owner', 'allixios_app', 'allixios_readonly')
\gexec

-- The roles and verifiers of the mounted file, if it is the one the bootstrap expects: a Secret
-- rotated a moment ago may not have reached the pod yet (55000, which the bootstrap waits on).
CREATE OR REPLACE FUNCTION allixios_credentials.mounted_verifiers(expected_sha256 text)
  RETURNS TABLE (role_name name, verifier text)
  LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
  content text;
  line text;
  parts text[];
  line_number integer := 0;
  seen name[] := '{}';
BEGIN
  content := pg_read_file(allixios_credentials.verifiers_file());
  IF encode(sha256(convert_to(content, 'UTF8')), 'hex') IS DISTINCT FROM lower(expected_sha256) THEN
    RAISE EXCEPTION 'the role verifiers file % is not the one the bootstrap was given (yet)', allixios_credentials.verifiers_file()
      USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'After a rotation the kubelet refreshes a mounted Secret within about a minute; otherwise the Secret and the bootstrap''s POSTGRES_ROLE_VERIFIERS differ.';
  END IF;
  FOREACH line IN ARRAY string_to_array(content, E'\n') LOOP
    line_number := line_number + 1;
    CONTINUE WHEN line ~ '^\s*(#.*)?$';
    parts := regexp_match(line, '^(\S+) (SCRAM-SHA-256\$[0-9]+:[A-Za-z0-9+/]+={0,2}\$[A-Za-z0-9+/]+={0,2}:[A-Za-z0-9+/]+={0,2})$');
    -- Never the line itself in the message: a password put there by mistake stays out of logs.
    IF parts IS NULL OR NOT (parts[1]::name = ANY (allixios_credentials.managed_roles())) OR parts[1]::name = ANY (seen) THEN
      RAISE EXCEPTION 'line % of the role verifiers file is not "<role> <SCRAM-SHA-256 verifier>" for a role of its own among %', line_number, allixios_credentials.managed_roles()
        USING ERRCODE = 'invalid_parameter_value';
    END IF;
    seen := seen || parts[1]::name;
    role_name := parts[1];
    verifier := parts[2];
    RETURN NEXT;
  END LOOP;
END
$function$;

-- Which roles the server does not give the mounted file's verifier: the bootstrap's plan.
CREATE OR REPLACE FUNCTION allixios_credentials.verifier_drift(expected_sha256 text)
  RETURNS SETOF name
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
  SELECT mounted.role_name
    FROM allixios_credentials.mounted_verifiers(expected_sha256) AS mounted
    LEFT JOIN pg_catalog.pg_authid AS stored ON stored.rolname = mounted.role_name
   WHERE stored.rolpassword IS DISTINCT FROM mounted.verifier
   ORDER BY array_position(allixios_credentials.managed_roles(), mounted.role_name);
END;

-- Gives one role the mounted file's verifier. Sessions already open stay; new logins need it.
CREATE OR REPLACE FUNCTION allixios_credentials.apply_verifier(target name, expected_sha256 text)
  RETURNS void
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
  wanted text;
BEGIN
  SELECT mounted.verifier INTO wanted FROM allixios_credentials.mounted_verifiers(expected_sha256) AS mounted WHERE mounted.role_name = target;
  IF wanted IS NULL THEN
    RAISE EXCEPTION 'the role verifiers file names no role %', target USING ERRCODE = 'invalid_parameter_value';
  END IF;
  BEGIN
    EXECUTE format('ALTER ROLE %I PASSWORD %L', target, wanted);
  EXCEPTION WHEN OTHERS THEN
    -- Re-raised without the statement, whose text (the verifier) PL/pgSQL would add as context.
    RAISE EXCEPTION 'could not set the verifier of %: %', target, SQLERRM USING ERRCODE = SQLSTATE;
  END;
END
$function$;

REVOKE ALL ON FUNCTION allixios_credentials.verifiers_file(), allixios_credentials.managed_roles(),
  allixios_credentials.mounted_verifiers(text), allixios_credentials.verifier_drift(text),
  allixios_credentials.apply_verifier(name, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION allixios_credentials.verifier_drift(text), allixios_credentials.apply_verifier(name, text) TO allixios_owner;
SQL

echo "${SCRIPT_NAME}: roles allixios_owner, allixios_app and allixios_readonly are ready in database ${POSTGRES_DB}, with allixios_credentials for password rotation."
