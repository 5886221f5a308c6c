#!/usr/bin/env bash
# Build daprd (runtime) and the dapr CLI from the Go module proxy into a cache outside the repo.
# Usage: DAPRD=$(scripts/build-dapr.sh)   -- last stdout line is the daprd path; logs go to stderr.
# See ../shared/DAPR.md §1 (wrapper module + replace block) and §9 (runtimePath layout).
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
export GOFLAGS="-mod=mod -buildvcs=false"

log() { echo "build-dapr: $*" >&2; }

# Idempotent: nothing to do if both binaries exist and daprd reports the pinned version.
if [[ -x "$DAPRD" && -x "$OUT/dapr" && -x "$OUT/runtime/.dapr/bin/daprd" ]] \
   && "$DAPRD" --version 2>/dev/null | grep -qx "$DAPR_VERSION"; then
  echo "$DAPRD"; exit 0
fi

mkdir -p "$OUT/runtime/.dapr/bin" "$GOMODCACHE" "$GOCACHE"
start=$SECONDS

# Work on a copy of the wrapper module so go.sum never lands in the repo.
BUILD="$CACHE/build"
rm -rf "$BUILD"; mkdir -p "$BUILD"
cp "$SRC/go.mod" "$BUILD/go.mod"
cd "$BUILD"

log "downloading github.com/dapr/dapr@v$DAPR_VERSION"
go mod download github.com/dapr/dapr@v$DAPR_VERSION >&2
# Seed go.sum with dapr's own sums (module cache files are read-only).
cp "$GOMODCACHE/github.com/dapr/dapr@v$DAPR_VERSION/go.sum" go.sum && chmod u+w go.sum

log "building daprd v$DAPR_VERSION (slow: ~900 modules)"
# Build tag is mandatory: without it daprd has no components and panics at start.
go build -trimpath -tags stablecomponents \
  -ldflags "-s -w -X github.com/dapr/dapr/pkg/buildinfo.version=$DAPR_VERSION" \
  -o "$DAPRD.tmp" github.com/dapr/dapr/cmd/daprd >&2
mv "$DAPRD.tmp" "$DAPRD"
cp "$DAPRD" "$OUT/runtime/.dapr/bin/daprd"   # `dapr run -f` wants <runtimePath>/.dapr/bin/daprd

log "building dapr CLI v$CLI_VERSION"
# `go install pkg@version` ignores the wrapper module; -mod=mod is rejected there, so drop GOFLAGS.
GOFLAGS=-buildvcs=false GOBIN="$OUT/gobin" go install -trimpath \
  -ldflags "-s -w -X main.version=$CLI_VERSION" github.com/dapr/cli@v$CLI_VERSION >&2
mv "$OUT/gobin/cli" "$OUT/dapr"; rmdir "$OUT/gobin"

log "done in $(( (SECONDS - start) / 60 ))m$(( (SECONDS - start) % 60 ))s; module cache $(du -sh "$GOMODCACHE" | cut -f1)"
"$DAPRD" --version >&2
echo "$DAPRD"
