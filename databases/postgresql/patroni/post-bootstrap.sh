#!/usr/bin/env bash
# Patroni's bootstrap.post_bootstrap (databases/postgresql/patroni.ts): what the official image's
# entrypoint does for the single server, done once for a cluster under Patroni. Patroni runs it on
# the member that initialises the cluster, after initdb, as the postgres OS user, against the new
# server, with one argument: a libpq connection string of its superuser over the Unix socket
# ("dbname=postgres user=postgres host=/var/run/postgresql port=5432"). A non-zero exit makes
# Patroni discard the new cluster and initialise again; nothing is half-applied.
#
# 1. The platform's database ($POSTGRES_DB), which initdb does not create (the image's entrypoint did).
# 2. Patroni's pg_rewind role, created here without a password: Patroni gives it LOGIN, its
#    password and its grants right after this script. It needs CONNECT on the database `postgres`
#    (pg_rewind reads the new primary there), which the roles script takes from PUBLIC.
# 3. The roles script (initdb/10-roles.sh, ALLIXIOS_ROLES_SCRIPT): the platform's roles, their
#    verifiers from the mounted Secret, and the hardening, exactly as on the single server.
# 4. When the stack backs up (ALLIXIOS_BACKUP_STANZA set, databases/postgresql/backup.ts): the
#    pgBackRest stanza in the repository, so that the new cluster's WAL is archived from its first
#    segment on. stanza-create is idempotent; the backup jobs run it too, before each backup (a
#    cluster that had backups turned on later never runs this script again). A failure here (the
#    object store unreachable) is reported and does not fail the bootstrap: Patroni would discard
#    the cluster and initialise again, forever, while the store is away; archiving retries on its
#    own, and the night's job creates the stanza.
#
# Nothing secret passes through here: the verifiers are read by the roles script from the
# mounted file, and Patroni's passwords stay in Patroni.
set -euo pipefail

readonly SCRIPT_NAME=post-bootstrap.sh
readonly ROLES_SCRIPT="${ALLIXIOS_ROLES_SCRIPT:-/docker-entrypoint-initdb.d/10-roles.sh}"

fail() {
  echo "${SCRIPT_NAME}: $*" >&2
  exit 1
}

[[ $# -ge 1 && -n "$1" ]] || fail "expected Patroni's connection string to the new server as the first argument, got none."
for name in POSTGRES_USER POSTGRES_DB ALLIXIOS_REWIND_ROLE; do
  [[ -n "${!name:-}" ]] || fail "environment variable ${name} is missing or empty; the container's environment sets it (databases/postgresql/patroni.ts)."
done
[[ -r "${ROLES_SCRIPT}" ]] || fail "the roles script ${ROLES_SCRIPT} cannot be read (ALLIXIOS_ROLES_SCRIPT names another path)."

# The roles script connects with libpq's defaults: point them at the server Patroni named.
# (Patroni escapes spaces in values with a backslash; a socket directory or port has none.)
read -r -a words <<<"$1"
for word in "${words[@]}"; do
  case "${word}" in
    host=*) export PGHOST="${word#host=}" ;;
    port=*) export PGPORT="${word#port=}" ;;
  esac
done

ALLIXIOS_REWIND_ROLE="${ALLIXIOS_REWIND_ROLE}" \
psql --no-psqlrc --no-password --set=ON_ERROR_STOP=1 --username="${POSTGRES_USER}" --dbname=postgres <<'SQL'
\getenv database POSTGRES_DB
\getenv rewind ALLIXIOS_REWIND_ROLE
SELECT format('CREATE DATABASE %I', :'database')
 WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = :'database')
\gexec
SELECT format('CREATE ROLE %I NOLOGIN', :'rewind')
 WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = :'rewind')
\gexec
GRANT CONNECT ON DATABASE postgres TO :"rewind";
SQL

bash "${ROLES_SCRIPT}"

if [[ -n "${ALLIXIOS_BACKUP_STANZA:-}" ]]; then
  if pgbackrest --stanza="${ALLIXIOS_BACKUP_STANZA}" --log-level-console=info stanza-create; then
    echo "${SCRIPT_NAME}: pgBackRest stanza ${ALLIXIOS_BACKUP_STANZA} is ready in the repository."
  else
    echo "${SCRIPT_NAME}: WARNING: could not create the pgBackRest stanza ${ALLIXIOS_BACKUP_STANZA} (above); WAL archiving fails until it exists, and the next backup job creates it." >&2
  fi
fi
echo "${SCRIPT_NAME}: database ${POSTGRES_DB}, the platform's roles and ${ALLIXIOS_REWIND_ROLE}'s access are ready."
