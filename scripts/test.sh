#!/usr/bin/env bash
# The README's test command: install what the tests need, start it on loopback, run pytest.
#   scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh

work=$(mktemp -d -t ops-test-XXXXXX)
pg_port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() {
  scripts/postgres.sh stop "$work/pg" || true
  rm -rf "$work"
}
trap cleanup EXIT

scripts/postgres.sh start "$pg_port" "$work/pg" fast
export OPS_TEST_POSTGRES_URL="postgresql+asyncpg://postgres@127.0.0.1:$pg_port"

# Redis (each end-to-end test starts its own on a free port) and daprd for `pytest -m dapr`.
if ! command -v redis-server >/dev/null; then
  echo "installing redis-server from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q redis-server >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q redis-server >/dev/null; }
fi
OPS_DAPRD=$(scripts/build-dapr.sh)
export OPS_DAPRD

.venv/bin/ruff check service worker tests bench
.venv/bin/lint-imports
.venv/bin/pytest "$@"
