#!/usr/bin/env bash
# Throwaway local Redis for Dapr pub/sub tests (no persistence).
# Usage: scripts/redis.sh start <port> <dir>   |   scripts/redis.sh stop <dir>
set -euo pipefail

usage() { echo "usage: $0 start <port> <dir> | stop <dir>" >&2; exit 2; }

ensure_redis() {
  command -v redis-server >/dev/null && return
  echo "redis.sh: installing redis-server" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Only refresh package lists if the first attempt fails (stale/empty lists).
  apt-get install -y -qq redis-server >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null && apt-get install -y -qq redis-server >/dev/null; }
  # Debian's package may auto-start a system instance on 6379; we don't use it.
  service redis-server stop >/dev/null 2>&1 || true
}

case "${1:-}" in
  start)
    [[ $# -eq 3 ]] || usage
    port=$2; dir=$(mkdir -p "$3" && cd "$3" && pwd)
    ensure_redis
    # Redis writes its pidfile only after binding the port, so a fresh pidfile + PONG proves that
    # *this* instance answers (not another one already on the port).
    rm -f "$dir/redis.pid"; : > "$dir/redis.log"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --dir "$dir" \
      --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --save "" --appendonly no
    echo "$port" > "$dir/redis.port"   # read back by `stop`
    deadline=$((SECONDS + 20))
    until [[ -s "$dir/redis.pid" && "$(redis-cli -p "$port" ping 2>/dev/null)" == PONG ]]; do
      if (( SECONDS >= deadline )) || grep -q aborting "$dir/redis.log"; then
        echo "redis.sh: redis on port $port failed to start:" >&2; tail -3 "$dir/redis.log" >&2; exit 1
      fi
      sleep 0.2
    done
    echo "redis.sh: redis up on 127.0.0.1:$port (dir $dir)" >&2
    ;;
  stop)
    [[ $# -eq 2 ]] || usage
    pidfile="$2/redis.pid"
    [[ -f "$pidfile" ]] || { echo "redis.sh: no $pidfile, nothing to stop" >&2; exit 0; }
    pid=$(cat "$pidfile")
    port=$(cat "$2/redis.port" 2>/dev/null || true)
    if [[ -n "$port" ]] && redis-cli -p "$port" shutdown nosave >/dev/null 2>&1; then :; else
      kill "$pid" 2>/dev/null || true
    fi
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$pidfile" "$2/redis.port"
    ;;
  *) usage ;;
esac
