#!/usr/bin/env bash
# A throwaway S3-compatible server on loopback for the tests: MinIO built from its Go module
# (cached outside the repo), or moto's standalone server when MinIO cannot be built here.
#   scripts/s3.sh build                  print the MinIO binary's path (build it once if needed)
#   scripts/s3.sh start <port> <dir>     start on 127.0.0.1:<port>; prints "minio" or "moto"
#   scripts/s3.sh stop <dir>
# Credentials: $S3_ACCESS_KEY / $S3_SECRET_KEY (the test defaults below). OPS_S3_SERVER=moto
# skips MinIO. Cold MinIO build on 2 cores: ~1.2 GB of modules, about 15 minutes.
set -euo pipefail

# The last commit of github.com/minio/minio on the proxy (the repository publishes no more
# release tags as module versions; RELEASE.* tags are not valid semver).
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
CACHE="${OPS_MINIO_CACHE:-$HOME/.cache/common-operations/minio}"
MINIO="$CACHE/$MINIO_VERSION/minio"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ACCESS_KEY=${S3_ACCESS_KEY:-test-access-key}
SECRET_KEY=${S3_SECRET_KEY:-test-secret-key-0123456789}

log() { echo "s3.sh: $*" >&2; }
usage() { echo "usage: $0 build | start <port> <dir> | stop <dir>" >&2; exit 2; }

build_minio() {
  [[ -x "$MINIO" ]] && { echo "$MINIO"; return 0; }
  # One build at a time per cache (two test runs on one machine share it): wait for the other.
  mkdir -p "$CACHE"
  exec 8>"$CACHE/.build.lock"
  flock 8
  [[ -x "$MINIO" ]] && { echo "$MINIO"; return 0; }
  export PATH="/usr/local/go/bin:$PATH" GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=
  export GOMODCACHE="$CACHE/gomod" GOCACHE="$CACHE/gocache" GOBIN="$CACHE/$MINIO_VERSION/bin"
  command -v go >/dev/null || { log "no Go toolchain"; return 1; }
  mkdir -p "$GOBIN"
  log "building MinIO $MINIO_VERSION from the Go module proxy (slow the first time)"
  # A time box, so that a proxy that refuses a module (403) or hangs costs minutes, not the run.
  timeout "${OPS_MINIO_BUILD_SECONDS:-1800}" \
    go install "github.com/minio/minio@$MINIO_VERSION" >&2 || return 1
  mv "$GOBIN/minio" "$MINIO.tmp.$$" && mv "$MINIO.tmp.$$" "$MINIO"
  echo "$MINIO"
}

wait_ready() {  # <url> <pid> <log>
  for _ in $(seq 1 150); do
    curl -fs -o /dev/null "$1" && return 0
    kill -0 "$2" 2>/dev/null || { log "server exited:"; tail -5 "$3" >&2; return 1; }
    sleep 0.2
  done
  log "server not ready at $1"; return 1
}

start() {  # <port> <dir>
  local port=$1 dir=$2 binary="" kind
  mkdir -p "$dir/data"
  if [[ "${OPS_S3_SERVER:-}" != moto ]]; then
    binary=$(build_minio) || { log "MinIO could not be built; moto's server stands in"; binary=""; }
  fi
  if [[ -n "$binary" ]]; then
    kind=minio
    MINIO_ROOT_USER="$ACCESS_KEY" MINIO_ROOT_PASSWORD="$SECRET_KEY" MINIO_BROWSER=off \
      MINIO_UPDATE=off "$binary" server "$dir/data" --quiet --address "127.0.0.1:$port" \
      >"$dir/server.log" 2>&1 &
  else
    kind=moto
    [[ -x "$ROOT/.venv/bin/moto_server" ]] || "$ROOT/.venv/bin/pip" install -q "moto[server]" >&2
    "$ROOT/.venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$dir/server.log" 2>&1 &
  fi
  local pid=$!
  echo "$pid" > "$dir/s3.pid"
  local probe="http://127.0.0.1:$port/minio/health/live"
  [[ $kind == moto ]] && probe="http://127.0.0.1:$port/moto-api/"
  wait_ready "$probe" "$pid" "$dir/server.log"
  log "$kind up on http://127.0.0.1:$port (dir $dir)"
  echo "$kind"
}

stop() {  # <dir>
  local pidfile="$1/s3.pid" pid
  [[ -f "$pidfile" ]] || return 0
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

case "${1:-}" in
  build) [[ $# -eq 1 ]] || usage; build_minio ;;
  start) [[ $# -eq 3 ]] || usage; start "$2" "$3" ;;
  stop) [[ $# -eq 2 ]] || usage; stop "$2" ;;
  *) usage ;;
esac
