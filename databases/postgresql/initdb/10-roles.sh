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
readonly ROLES=(allixios_owner allixios_app allixios_readonly)
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
ALLIXIOS_OWNER_VERIFIER="${VERIFIER[allixios_owner]}" \
ALLIXIOS_APP_VERIFIER="${VERIFIER[allixios_app]}" \
ALLIXIOS_READONLY_VERIFIER="${VERIFIER[allixios_readonly]}" \
psql --no-psqlrc --no-password --single-transaction \
  --set=ON_ERROR_STOP=1 \
  --username="${POSTGRES_USER}" \
  --dbname="${POSTGRES_DB}" <<'SQL'
\getenv database POSTGRES_DB
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
-- PostgreSQL grants all of these to PUBLIC; EXECUTE is revoked in this database only (pg_proc
-- is per database).
SELECT format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', p.oid::regprocedure),
       CASE WHEN p.proname ~ '^pg_(try_)?advisory_' THEN format('GRANT EXECUTE ON FUNCTION %s TO allixios_owner', p.oid::regprocedure) END
  FROM pg_catalog.pg_proc p
 WHERE p.pronamespace = 'pg_catalog'::regnamespace
   AND (p.proname ~ '^pg_(try_)?advisory_'
        OR p.proname IN ('lo_creat', 'lo_create', 'lo_from_bytea', 'lo_import', 'lo_put', 'pg_notify',
                         'pg_terminate_backend', 'pg_cancel_backend'))
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
SQL

echo "${SCRIPT_NAME}: roles allixios_owner, allixios_app and allixios_readonly are ready in database ${POSTGRES_DB}."
