#!/bin/sh
# A Redis Sentinel (databases/redis/sentinel.ts; why: ../README.md, "Replication and Sentinel").
#
#   sentinel.sh start    the container's command: writes its configuration, then runs Sentinel
#   sentinel.sh ready    readiness: this Sentinel sees enough Sentinels to fail over (CKQUORUM)
#   sentinel.sh live     liveness: it answers PING
#   sentinel.sh reload   a renewed certificate: Sentinel reads it only when it starts, so it stops
#                        (SIGTERM by its pid file; its state is in its rewritten configuration) and
#                        the container restarts; nothing when the certificate is the one it started with
#
# Sentinel rewrites its configuration file as it learns (epochs, replicas, other Sentinels), so it
# runs from a copy on its own volume ($SENTINEL_CONFIG_DIR): a Sentinel restarted, or rescheduled
# with its volume, keeps what it knew, as Redis's documentation expects of Sentinel. The copy is
# written anew when the template or the secret lines changed (a deploy, a password rotation),
# which the checksum kept beside it tells. A new copy is written from the template with:
#   - `sentinel myid`: derived from this Sentinel's address, so a Sentinel that comes back in a
#     new pod is the same Sentinel to the others (Sentinels never forget one they have seen: a new
#     id each time would count stale Sentinels against the majority a failover needs);
#   - its announced address (a name its certificate carries);
#   - the master to monitor: the one the other Sentinels name, else the member that says it is
#     master, else the first member (a new cluster).
#
# Environment:
#   SENTINEL_ANNOUNCE              this Sentinel's address, host:port
#   ALLIXIOS_SENTINELS             every Sentinel's address, separated by spaces
#   ALLIXIOS_REDIS_MEMBERS         every Redis member's address, in ordinal order
#   ALLIXIOS_MASTER_NAME           the master's name
#   SENTINEL_TEMPLATE              the configuration with @MYID@, @ANNOUNCE_HOST@, @ANNOUNCE_PORT@, @MASTER_HOST@, @MASTER_PORT@
#   SENTINEL_AUTH_FILE             the secret lines appended to it (auth-pass, sentinel-pass)
#   SENTINEL_CONFIG_DIR            where the copy is written
#   REDIS_MONITOR_PASSWORD_FILE    allixios_monitor's password, on Redis and on Sentinel
#   ALLIXIOS_REDIS_CLI_TLS         redis-cli's TLS arguments, empty without TLS
#   SENTINEL_TLS_CERTIFICATE       the certificate Sentinel serves, on a TLS stack (for `reload`)
set -eu

mode=${1:-}
directory=${SENTINEL_CONFIG_DIR:-/data}
config="$directory/sentinel.conf"
pidfile="$directory/sentinel.pid"
# The checksum of the certificate Sentinel started with.
loaded="$directory/certificate.loaded"

ask() {
  address=$1
  shift
  # shellcheck disable=SC2086 # the TLS arguments are words
  timeout 3 redis-cli ${ALLIXIOS_REDIS_CLI_TLS:-} -h "${address%:*}" -p "${address##*:}" --user allixios_monitor --askpass "$@" <"$REDIS_MONITOR_PASSWORD_FILE" 2>/dev/null
}

case "$mode" in
live)
  ask "localhost:${SENTINEL_ANNOUNCE##*:}" ping | grep -q '^PONG'
  ;;
ready)
  ask "localhost:${SENTINEL_ANNOUNCE##*:}" sentinel ckquorum "$ALLIXIOS_MASTER_NAME" | grep -q '^OK'
  ;;
reload)
  # The readiness check runs this on its first run after a start too: the certificate is then the
  # one Sentinel read, and nothing is done.
  [ -n "${SENTINEL_TLS_CERTIFICATE:-}" ] || exit 0
  [ "$(cksum <"$SENTINEL_TLS_CERTIFICATE")" = "$(cat "$loaded" 2>/dev/null)" ] && exit 0
  kill -TERM "$(cat "$pidfile")"
  ;;
start)
  source=$(cat "$SENTINEL_TEMPLATE" "$SENTINEL_AUTH_FILE" | sha1sum | cut -c1-40)
  if [ ! -s "$config" ] || [ "$source" != "$(cat "$config.source" 2>/dev/null)" ]; then
    me=$SENTINEL_ANNOUNCE
    master=
    for sentinel in $ALLIXIOS_SENTINELS; do
      [ "$sentinel" = "$me" ] && continue
      reply=$(ask "$sentinel" sentinel get-master-addr-by-name "$ALLIXIOS_MASTER_NAME" | tr -d '\r') || continue
      host=$(echo "$reply" | sed -n 1p)
      port=$(echo "$reply" | sed -n 2p)
      case "$port" in '' | *[!0-9]*) continue ;; esac
      master="$host:$port"
      break
    done
    if [ -z "$master" ]; then
      for member in $ALLIXIOS_REDIS_MEMBERS; do
        if ask "$member" info replication | tr -d '\r' | grep -qx 'role:master'; then
          master=$member
          break
        fi
      done
    fi
    if [ -z "$master" ]; then
      for member in $ALLIXIOS_REDIS_MEMBERS; do
        master=$member
        break
      done
    fi
    myid=$(printf '%s' "$me" | sha1sum | cut -c1-40)
    umask 077
    sed -e "s/@MYID@/$myid/" -e "s/@ANNOUNCE_HOST@/${me%:*}/" -e "s/@ANNOUNCE_PORT@/${me##*:}/" \
      -e "s/@MASTER_HOST@/${master%:*}/" -e "s/@MASTER_PORT@/${master##*:}/" "$SENTINEL_TEMPLATE" >"$config.new"
    cat "$SENTINEL_AUTH_FILE" >>"$config.new"
    mv "$config.new" "$config"
    printf '%s\n' "$source" >"$config.source"
    echo "sentinel: $me monitors $ALLIXIOS_MASTER_NAME at $master (id $myid)" >&2
  else
    echo "sentinel: $SENTINEL_ANNOUNCE keeps its configuration (its template and secrets are unchanged)" >&2
  fi
  if [ -n "${SENTINEL_TLS_CERTIFICATE:-}" ]; then cksum <"$SENTINEL_TLS_CERTIFICATE" >"$loaded"; fi
  exec redis-sentinel "$config" --pidfile "$pidfile"
  ;;
*)
  echo "usage: $0 start | ready | live | reload" >&2
  exit 2
  ;;
esac
