#!/usr/bin/env bash
# Creates the platform's roles in a fresh cluster.
#
# The official postgres image runs every executable /docker-entrypoint-initdb.d/*.sh once, when
# it initialises an empty data directory: as the postgres OS user, after it created
# $POSTGRES_DB, against its temporary server on the Unix socket (peer authentication, see
# pg_hba.conf). psql honours PGHOST/PGPORT/PGUSER/PGPASSWORD, so the same script also runs
# against a TCP server (the test does exactly that).
#
# Roles:
#   allixios_owner     owns $POSTGRES_DB and its public schema; the bootstrap migrates as it.
#   allixios_app       the platform: no superuser, no BYPASSRLS, so row-level security applies.
#   allixios_readonly  reporting; read-only by default even where a grant would allow writes.
#
# Table-level grants (SELECT/INSERT/... to allixios_app and allixios_readonly) are not made
# here: the tables do not exist yet; the migrations that create them grant on them.
#
# Passwords never pass through the shell into SQL nor onto a command line (visible in `ps`):
# psql reads them from its own environment with \getenv and quotes them as literals with
# :'name'. \getenv needs psql 15 or newer (the image ships 18).
set -euo pipefail

readonly SCRIPT_NAME=10-roles.sh

# Which variable holds what, to say so when one is missing.
declare -A REQUIRED=(
  [POSTGRES_USER]='the superuser the entrypoint connects as'
  [POSTGRES_DB]='the database the entrypoint created (allixios)'
  [ALLIXIOS_OWNER_PASSWORD]='the password of role allixios_owner (secret owner-password)'
  [ALLIXIOS_APP_PASSWORD]='the password of role allixios_app (secret app-password)'
  [ALLIXIOS_READONLY_PASSWORD]='the password of role allixios_readonly (secret readonly-password)'
)
missing=0
for name in POSTGRES_USER POSTGRES_DB ALLIXIOS_OWNER_PASSWORD ALLIXIOS_APP_PASSWORD ALLIXIOS_READONLY_PASSWORD; do
  if [[ -z "${!name:-}" ]]; then
    echo "${SCRIPT_NAME}: environment variable ${name} is missing or empty; it must hold ${REQUIRED[$name]}." >&2
    missing=1
  fi
done
if (( missing )); then
  echo "${SCRIPT_NAME}: no role was created or changed." >&2
  exit 1
fi

# One transaction: a failure leaves no half-configured roles behind. The quoted heredoc keeps
# the shell from expanding anything inside the SQL.
psql --no-psqlrc --no-password --single-transaction \
  --set=ON_ERROR_STOP=1 \
  --username="${POSTGRES_USER}" \
  --dbname="${POSTGRES_DB}" <<'SQL'
\getenv database POSTGRES_DB
\getenv owner_password ALLIXIOS_OWNER_PASSWORD
\getenv app_password ALLIXIOS_APP_PASSWORD
\getenv readonly_password ALLIXIOS_READONLY_PASSWORD

-- CREATE only when missing, then ALTER to the wanted attributes and password: rerunning the
-- script (by hand, to rotate passwords) converges instead of failing on existing roles.
SELECT format('CREATE ROLE %I', wanted.role_name)
  FROM unnest(ARRAY['allixios_owner', 'allixios_app', 'allixios_readonly']) AS wanted(role_name)
 WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = wanted.role_name)
\gexec

-- The owner migrates the schema but administers nothing else: no new databases or roles.
ALTER ROLE allixios_owner WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  PASSWORD :'owner_password';
-- The application must never escape row-level security: no superuser, no BYPASSRLS, and it
-- owns no table (owners are exempt from RLS unless FORCE ROW LEVEL SECURITY).
ALTER ROLE allixios_app WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  PASSWORD :'app_password';
ALTER ROLE allixios_readonly WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  PASSWORD :'readonly_password';
-- A second lock besides the grants: a write grant given by mistake still fails unless the
-- session explicitly asks for a read-write transaction.
ALTER ROLE allixios_readonly SET default_transaction_read_only = on;

-- The owner owns the database and the schema the migrations fill (objects it creates are its).
ALTER DATABASE :"database" OWNER TO allixios_owner;
ALTER SCHEMA public OWNER TO allixios_owner;

-- Only the platform's roles may connect; a role created later gets nothing by default.
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

-- postgresql.conf preloads pg_stat_statements; creating the extension needs a superuser, which
-- the bootstrap's migrator is not.
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
SQL

echo "${SCRIPT_NAME}: roles allixios_owner, allixios_app and allixios_readonly are ready in database ${POSTGRES_DB}."
