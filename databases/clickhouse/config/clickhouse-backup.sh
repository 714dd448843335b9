#!/bin/sh
# The ClickHouse backup jobs (databases/clickhouse/backup.ts; why: ../README.md, "Backups and
# restore"): ClickHouse's own BACKUP, written by the server straight to the object store through
# the named collection `allixios_backups` of its configuration (config.d/backup.xml), which holds
# the store's URL and keys: no credential is in the statement, so none reaches the query log or
# system.backups.
#
#   clickhouse-backup.sh full          BACKUP DATABASE allixios TO S3(allixios_backups, 'full/<time>')
#   clickhouse-backup.sh incremental   the same to 'incremental/<time>', on the latest full backup
#
# Backup ids are `full/<UTC time>` and `incremental/<UTC time>` (20261208T030000Z): they sort by time.
# The latest full backup is the greatest `full/<time>` whose `.backup` file exists: ClickHouse writes
# that file last, once every other file of the backup is stored, so a backup cut short is never
# taken as a base. The store is listed by clickhouse-local in this pod, with the same named
# collection, so the server's backup user needs no right to read S3 itself. With no full backup
# yet, the incremental job takes a full one.
#
# Environment (the target fills it):
#   CLICKHOUSE_USER, CLICKHOUSE_PASSWORD  allixios_backup and its password, read by clickhouse-client itself
#   CLICKHOUSE_HOST, CLICKHOUSE_PORT      the engine's Service and its native port
#   CLICKHOUSE_CLIENT_OPTIONS             clickhouse-client's TLS options and settings (empty without TLS)
#   CLICKHOUSE_CLIENT_CONFIG              clickhouse-client's configuration (the CA on a TLS stack)
#   CLICKHOUSE_BACKUP_COLLECTION_CONFIG   the named collection, for clickhouse-local
#   CLICKHOUSE_LOCAL_OPTIONS              clickhouse-local's settings
#   CLICKHOUSE_BACKUP_URL and the store's keys   read by both configurations (from_env)
#   CLICKHOUSE_BACKUP_FULL_SQL, CLICKHOUSE_BACKUP_INCREMENTAL_SQL, CLICKHOUSE_BACKUP_LATEST_FULL_SQL
#                                         the statements, with {id} and {base} to fill
#   CLICKHOUSE_BACKUP_TIMEOUT             seconds a BACKUP may take before the client gives up
set -eu

kind=${1:-}
case "$kind" in
full | incremental) ;;
*)
  echo "usage: $0 full|incremental" >&2
  exit 2
  ;;
esac
# The password is never expanded here: only clickhouse-client reads it.
[ -n "${CLICKHOUSE_PASSWORD+set}" ] || {
  echo "clickhouse-backup: CLICKHOUSE_PASSWORD (allixios_backup's password) is not set" >&2
  exit 2
}

log() { echo "clickhouse-backup: $*" >&2; }

base=
if [ "$kind" = incremental ]; then
  # shellcheck disable=SC2086 # the options are words
  base=$(clickhouse local --config-file "$CLICKHOUSE_BACKUP_COLLECTION_CONFIG" ${CLICKHOUSE_LOCAL_OPTIONS:-} --query "$CLICKHOUSE_BACKUP_LATEST_FULL_SQL")
  if [ -z "$base" ]; then
    log "no full backup in the store yet: taking a full one"
    kind=full
  else
    # The name comes from the store: only a well-formed id goes into the statement.
    if ! printf '%s\n' "$base" | grep -Eqx 'full/[0-9]{8}T[0-9]{6}Z'; then
      log "the latest full backup's name is not an id this job writes: $base"
      exit 1
    fi
  fi
fi

id="$kind/$(date -u +%Y%m%dT%H%M%SZ)"
if [ "$kind" = incremental ]; then
  sql=$(printf '%s' "$CLICKHOUSE_BACKUP_INCREMENTAL_SQL" | sed -e "s|{id}|$id|g" -e "s|{base}|$base|g")
  log "incremental backup $id on $base"
else
  sql=$(printf '%s' "$CLICKHOUSE_BACKUP_FULL_SQL" | sed -e "s|{id}|$id|g")
  log "full backup $id"
fi
# BACKUP runs synchronously: the client prints `<operation id> BACKUP_CREATED`, or fails with the
# server's error. The server sends nothing while it works, so the client waits up to the job's deadline.
# shellcheck disable=SC2086 # the options are words
clickhouse-client --config-file "$CLICKHOUSE_CLIENT_CONFIG" --host "$CLICKHOUSE_HOST" --port "$CLICKHOUSE_PORT" --user "$CLICKHOUSE_USER" ${CLICKHOUSE_CLIENT_OPTIONS:-} \
  --receive_timeout "${CLICKHOUSE_BACKUP_TIMEOUT:-3600}" --query "$sql"
log "done: $id"
