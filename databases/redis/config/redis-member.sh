#!/bin/sh
# A Redis member under Sentinel (databases/redis/sentinel.ts; why: ../README.md, "Replication
# and Sentinel"). One script, three uses:
#
#   redis-member.sh start redis-server <config> <args...>   the container's command
#   redis-member.sh ready                                   readiness: serves as master, or as a replica in sync
#   redis-member.sh live                                    liveness: answers at all (loading counts)
#
# `start` decides only how the member comes up: as a replica of the master the Sentinels name,
# else of the member that says it is master, else (a new cluster) of the first member, or as
# the master when that is itself. Everything after that (failure detection, election, promotion,
# reconfiguring the others, turning a returning old master into a replica) is Sentinel's.
#
# Environment (the target fills it, or the drill):
#   REDIS_ANNOUNCE                 this member's address, host:port, as the others and the clients reach it
#   ALLIXIOS_REDIS_MEMBERS         every member's address, in ordinal order, separated by spaces
#   ALLIXIOS_SENTINELS             every Sentinel's address, separated by spaces
#   ALLIXIOS_MASTER_NAME           the master's name under Sentinel
#   REDIS_MONITOR_PASSWORD_FILE    allixios_monitor's password (INFO, and get-master-addr-by-name on Sentinel)
#   ALLIXIOS_REDIS_CLI_TLS         redis-cli's TLS arguments (`--tls --cacert <ca>`), empty without TLS
# Passwords are read from their file on redis-cli's standard input (--askpass): never an
# argument or a variable of their own.
set -eu

mode=${1:-}
[ $# -gt 0 ] && shift

# redis-cli as allixios_monitor against host:port ($1), the rest its command.
ask() {
  address=$1
  shift
  # shellcheck disable=SC2086 # the TLS arguments are words
  timeout 3 redis-cli ${ALLIXIOS_REDIS_CLI_TLS:-} -h "${address%:*}" -p "${address##*:}" --user allixios_monitor --askpass "$@" <"$REDIS_MONITOR_PASSWORD_FILE" 2>/dev/null
}

case "$mode" in
live)
  # PONG, or LOADING while it reads its AOF: alive. No answer, or another error: not.
  ask "localhost:${REDIS_ANNOUNCE##*:}" ping | grep -qE '^(PONG|LOADING)'
  ;;
ready)
  # A master serves; a replica serves once its link to the master is up (synchronised).
  info=$(ask "localhost:${REDIS_ANNOUNCE##*:}" info replication | tr -d '\r')
  echo "$info" | grep -qx 'role:master' || echo "$info" | grep -qx 'master_link_status:up'
  ;;
start)
  me=$REDIS_ANNOUNCE
  master=
  # 1. The Sentinels' master: the one the cluster agreed on.
  for sentinel in $ALLIXIOS_SENTINELS; do
    reply=$(ask "$sentinel" sentinel get-master-addr-by-name "$ALLIXIOS_MASTER_NAME" | tr -d '\r') || continue
    host=$(echo "$reply" | sed -n 1p)
    port=$(echo "$reply" | sed -n 2p)
    case "$port" in '' | *[!0-9]*) continue ;; esac
    master="$host:$port"
    break
  done
  # 2. No Sentinel knows one (a new cluster, or all Sentinels away): a member that is master now.
  if [ -z "$master" ]; then
    for member in $ALLIXIOS_REDIS_MEMBERS; do
      [ "$member" = "$me" ] && continue
      if ask "$member" info replication | tr -d '\r' | grep -qx 'role:master'; then
        master=$member
        break
      fi
    done
  fi
  # 3. Nobody: the first member is the master of a new cluster.
  if [ -z "$master" ]; then
    for member in $ALLIXIOS_REDIS_MEMBERS; do
      master=$member
      break
    done
  fi
  # Announced by name (a name its certificate carries), so Sentinel and the clients reach it by
  # name and verify it; its port is the one it listens on.
  if [ "$master" = "$me" ]; then
    echo "redis-member: $me starts as the master" >&2
    exec "$@" --replica-announce-ip "${me%:*}"
  fi
  echo "redis-member: $me starts as a replica of $master" >&2
  exec "$@" --replica-announce-ip "${me%:*}" --replicaof "${master%:*}" "${master##*:}"
  ;;
*)
  echo "usage: $0 start redis-server <args> | ready | live" >&2
  exit 2
  ;;
esac
