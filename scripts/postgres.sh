#!/usr/bin/env bash
# Start or stop a throwaway PostgreSQL cluster on a loopback port of its own.
#   scripts/postgres.sh start <port> <dir> [fast]   fast = fsync/synchronous_commit off (tests)
#   scripts/postgres.sh stop <dir>
# Installs Debian's postgresql when no server binaries are found. PostgreSQL refuses to run as
# root, so as root the cluster belongs to the 'postgres' system user.
set -euo pipefail

find_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
  done
  return 1
}

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cmd=${1:?usage: postgres.sh start <port> <dir> [fast] | stop <dir>}
case "$cmd" in
  start)
    port=${2:?port}; dir=${3:?dir}; mode=${4:-}
    bin=$(find_bin) || {
      echo "installing postgresql from Debian's packages" >&2
      export DEBIAN_FRONTEND=noninteractive
      apt-get install -y -q postgresql >/dev/null 2>&1 || { apt-get update -q >/dev/null; apt-get install -y -q postgresql >/dev/null; }
      bin=$(find_bin)
    }
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    if [ ! -f "$dir/PG_VERSION" ]; then
      as_owner "$bin/initdb" -D "$dir" -U postgres -A trust -E UTF8 --no-instructions >/dev/null
    fi
    opts="-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c max_connections=300"
    if [ "$mode" = fast ]; then
      opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    fi
    opts="$opts ${PG_EXTRA_OPTS:-}"  # e.g. auto_explain while investigating a plan
    as_owner "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -o "$opts" -w -t 60 start >/dev/null
    for _ in $(seq 1 100); do
      "$bin/pg_isready" -h 127.0.0.1 -p "$port" -q && exit 0
      sleep 0.2
    done
    echo "postgresql did not become ready on port $port" >&2; exit 1
    ;;
  stop)
    dir=${2:?dir}; bin=$(find_bin)
    [ -f "$dir/postmaster.pid" ] && as_owner "$bin/pg_ctl" -D "$dir" -m fast -w stop >/dev/null || true
    ;;
  *) echo "unknown command $cmd" >&2; exit 2 ;;
esac
