#!/usr/bin/env bash
# Build daprd (runtime) and the dapr CLI from the Go module proxy into a cache outside the repo.
# Usage: DAPRD=$(scripts/build-dapr.sh)   -- last stdout line is the daprd path; logs go to stderr.
# See ../shared/DAPR.md §1 (wrapper module) and §9 (runtimePath), and the notes in dapr-build/go.mod.
# Cold run on 2 cores: ~9.5 min wall; ~3.1 GB module cache + ~1.8 GB build cache; daprd ~126 MiB.
set -euo pipefail

DAPR_VERSION=1.18.3
CLI_VERSION=1.18.0
CACHE="${OPS_DAPR_CACHE:-$HOME/.cache/common-operations/dapr}"
OUT="$CACHE/$DAPR_VERSION"
DAPRD="$OUT/daprd"
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/dapr-build"

export PATH="/usr/local/go/bin:$PATH"
export GOTOOLCHAIN=local CGO_ENABLED=0
export GOMODCACHE="$CACHE/gomod" GOCACHE="$CACHE/gocache"
export GOFLAGS=-mod=mod

log() { echo "build-dapr: $*" >&2; }

build_daprd() {
  # Work on a copy of the wrapper module so go.sum never lands in the repo.
  local build="$CACHE/build"
  rm -rf "$build"; mkdir -p "$build/avro-stub" "$OUT/runtime/.dapr/bin"
  cp "$SRC/go.mod" "$build/go.mod"
  # Stub for github.com/iskorotkov/avro/v2 (not served by the proxy; see go.mod). daprd only does
  # `avro.DefaultConfig = avro.Config{...}.Freeze()` with it; pulsar itself uses hamba/avro.
  printf 'module github.com/iskorotkov/avro/v2\n\ngo 1.22\n' > "$build/avro-stub/go.mod"
  printf '%s\n' 'package avro' 'type API interface{}' \
    'type Config struct{ MaxSliceAllocSize, MaxMapAllocSize int }' \
    'func (c Config) Freeze() API { return c }' \
    'var DefaultConfig API = Config{}.Freeze()' > "$build/avro-stub/avro.go"
  cd "$build"
  log "downloading github.com/dapr/dapr@v$DAPR_VERSION"
  go mod download github.com/dapr/dapr@v$DAPR_VERSION >&2
  # Seed go.sum with dapr's own sums (module cache files are read-only); -mod=mod adds the rest.
  cp "$GOMODCACHE/github.com/dapr/dapr@v$DAPR_VERSION/go.sum" go.sum && chmod u+w go.sum
  log "building daprd v$DAPR_VERSION (slow: ~900 modules)"
  # A build tag is mandatory: without one daprd registers no components and panics at start.
  go build -trimpath -tags stablecomponents \
    -ldflags "-s -w -X github.com/dapr/dapr/pkg/buildinfo.version=$DAPR_VERSION" \
    -o "$DAPRD.tmp.$$" github.com/dapr/dapr/cmd/daprd >&2
  mv "$DAPRD.tmp.$$" "$DAPRD"
  cp "$DAPRD" "$OUT/runtime/.dapr/bin/daprd"   # `dapr run -f` wants <runtimePath>/.dapr/bin/daprd
}

build_cli() {
  # `go install pkg@version` ignores the wrapper module (the CLI needs no replaces); no -mod flag.
  log "building dapr CLI v$CLI_VERSION"
  if GOFLAGS= GOBIN="$OUT/gobin" go install -trimpath -ldflags "-X main.version=$CLI_VERSION" \
       github.com/dapr/cli@v$CLI_VERSION >&2; then
    mv "$OUT/gobin/cli" "$OUT/dapr"; rmdir "$OUT/gobin"
  else
    # The proxy here serves the CLI's .info/.mod but 403s its .zip: run daprd directly (DAPR.md §2).
    log "WARNING: dapr CLI v$CLI_VERSION not built (module not downloadable); daprd is fine"
  fi
}

start=$SECONDS
mkdir -p "$OUT" "$GOMODCACHE" "$GOCACHE"
# One build at a time per cache: two test runs on one machine would otherwise both build into
# the same work directory and one would lose its files (the loser waits, then finds daprd built).
exec 9>"$CACHE/.build.lock"
flock 9
# Idempotent: skip daprd if it exists and reports the pinned version; retry only a missing CLI.
if [[ -x "$DAPRD" && -x "$OUT/runtime/.dapr/bin/daprd" ]] \
   && [[ "$("$DAPRD" --version 2>/dev/null)" == "$DAPR_VERSION" ]]; then
  [[ -x "$OUT/dapr" ]] || (cd "$OUT" && build_cli)
  echo "$DAPRD"; exit 0
fi
(build_daprd)
(cd "$OUT" && build_cli)

log "done in $(( (SECONDS - start) / 60 ))m$(( (SECONDS - start) % 60 ))s; module cache $(du -sh "$GOMODCACHE" | cut -f1)"
echo "$DAPRD"
