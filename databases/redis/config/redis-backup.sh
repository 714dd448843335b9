#!/bin/sh
# The Redis backup job (databases/redis/backup.ts; why: ../README.md, "Backups and restore"):
# an RDB snapshot taken with `redis-cli --rdb` from a replica in sync, checked with
# redis-check-rdb, written to $BACKUP_DIRECTORY, which the job's upload step then sends to the
# object store. Run in the Redis image (redis-cli, redis-check-rdb), as allixios_backup, whose
# ACL allows REPLCONF and SYNC only: `redis-cli --rdb` sends `REPLCONF capa eof`,
# `REPLCONF rdb-only 1` and `SYNC`, and the server streams a fresh RDB from a fork, nothing more.
#
# Which member: the replica in sync with the highest replication offset that Sentinel names
# (`SENTINEL REPLICAS`), so the master's fork and copy-on-write memory go untouched; the master
# when there is none (a stack of one member, or every replica down or syncing); the engine's
# address ($REDIS_HOST) when no Sentinel is configured (Docker, by hand) or none answers.
#
# Environment (the target fills it):
#   REDISCLI_AUTH        allixios_backup's password, read by redis-cli itself: never an argument
#   REDIS_BACKUP_USER    allixios_backup
#   REDIS_HOST           the engine's address, host:port (the Service)
#   REDIS_SENTINEL       a Sentinel's address, host:port (the Sentinels' Service); empty: none
#   REDIS_MASTER_NAME    the master's name under Sentinel
#   REDIS_CLI_TLS        redis-cli's TLS arguments (`--tls --cacert <ca>`), empty without TLS
#   BACKUP_DIRECTORY     where dump.rdb and snapshot.txt are written
set -eu

# The password is never expanded here, not even for a builtin: only redis-cli reads it.
[ -n "${REDISCLI_AUTH+set}" ] || {
  echo "redis-backup: REDISCLI_AUTH (allixios_backup's password) is not set" >&2
  exit 2
}
: "${REDIS_HOST:?the engine's host:port}" "${BACKUP_DIRECTORY:?the directory to write to}"
user=${REDIS_BACKUP_USER:-allixios_backup}
master_name=${REDIS_MASTER_NAME:-allixios}

log() { echo "redis-backup: $*" >&2; }

# redis-cli as the backup user against host:port ($2), within $1 seconds (0: no limit), the rest its arguments.
cli() {
  seconds=$1
  address=$2
  shift 2
  # shellcheck disable=SC2086 # the TLS arguments are words
  timeout "$seconds" redis-cli ${REDIS_CLI_TLS:-} -h "${address%:*}" -p "${address##*:}" --user "$user" --no-auth-warning "$@"
}

# A Sentinel's reply to one command; exit 1 when it cannot be reached, 2 when it refuses us
# (a wrong password or a missing permission is a configuration error, not a reason to look elsewhere).
sentinel() {
  reply=$(cli 10 "$REDIS_SENTINEL" "$@" 2>&1) || {
    log "Sentinel $REDIS_SENTINEL did not answer: $(echo "$reply" | head -n 1)"
    return 1
  }
  case "$reply" in
  *WRONGPASS* | *NOPERM* | *NOAUTH* | "ERR "*)
    log "Sentinel $REDIS_SENTINEL refused $*: $(echo "$reply" | head -n 1)"
    return 2
    ;;
  esac
  printf '%s\n' "$reply" | tr -d '\r'
}

source=
if [ -n "${REDIS_SENTINEL:-}" ]; then
  status=0
  replicas=$(sentinel sentinel replicas "$master_name") || status=$?
  [ "$status" -eq 2 ] && exit 1
  if [ "$status" -eq 0 ]; then
    # The reply is name/value lines, one replica after the other, each starting with `name`.
    # A replica in sync: flags exactly `slave` (no s_down, disconnected, ...), its link to the
    # master up; of those, the one furthest along the replication stream.
    source=$(printf '%s\n' "$replicas" | awk '
      NR % 2 == 1 { key = $0; next }
      { if (key == "name") n++; field[n, key] = $0 }
      END {
        for (i = 1; i <= n; i++)
          if (field[i, "flags"] == "slave" && field[i, "master-link-status"] == "ok" && (best == "" || field[i, "slave-repl-offset"] + 0 > offset)) {
            best = field[i, "ip"] ":" field[i, "port"]
            offset = field[i, "slave-repl-offset"] + 0
          }
        print best
      }')
    if [ -n "$source" ]; then
      log "snapshot of $source, a replica in sync (Sentinel $REDIS_SENTINEL)"
      role=replica
    else
      status=0
      master=$(sentinel sentinel get-master-addr-by-name "$master_name") || status=$?
      [ "$status" -eq 2 ] && exit 1
      host=$(echo "$master" | sed -n 1p)
      port=$(echo "$master" | sed -n 2p)
      case "$port" in
      '' | *[!0-9]*) log "Sentinel $REDIS_SENTINEL names no master $master_name" ;;
      *)
        source="$host:$port"
        role=master
        log "snapshot of $source, the master: Sentinel knows no replica in sync"
        ;;
      esac
    fi
  fi
fi
if [ -z "$source" ]; then
  source=$REDIS_HOST
  role=unknown
  log "snapshot of $source, the engine's address${REDIS_SENTINEL:+ (no answer from Sentinel)}"
fi

mkdir -p "$BACKUP_DIRECTORY"
partial="$BACKUP_DIRECTORY/dump.rdb.partial"
rm -f "$partial"
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
# redis-cli exits 1 when the transfer fails or is cut short.
cli 0 "$source" --rdb "$partial" >&2
# The file is whole and readable: redis-check-rdb verifies its checksum and counts its keys.
if ! check=$(redis-check-rdb "$partial" 2>&1); then
  log "the snapshot fails redis-check-rdb:"
  echo "$check" | tail -n 5 >&2
  exit 1
fi
mv "$partial" "$BACKUP_DIRECTORY/dump.rdb"
{
  echo "source=$source"
  echo "role=$role"
  echo "started=$started"
  echo "finished=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "bytes=$(wc -c <"$BACKUP_DIRECTORY/dump.rdb" | tr -d ' ')"
  echo "$check" | sed -n -e "s/.*AUX FIELD redis-ver = '\(.*\)'/redis_version=\1/p" -e 's/^\[info\] \([0-9]*\) keys read/keys=\1/p' -e 's/^\[info\] \([0-9]*\) expires/expires=\1/p' -e 's/^\[info\] \([0-9]*\) already expired/already_expired=\1/p'
} >"$BACKUP_DIRECTORY/snapshot.txt"
log "done: $(tr '\n' ' ' <"$BACKUP_DIRECTORY/snapshot.txt")"
