#!/usr/bin/env bash
# The README's test command: install what the tests need, run the static checks (ruff, the
# import contracts, strict mypy: scripts/lint.sh), start what the tests need on loopback, run pytest
# on several pytest-xdist workers.
#   scripts/test.sh [pytest args]            e.g. scripts/test.sh tests/unit -x
#   scripts/test.sh -n 0 tests/x.py::test_y  one process, serially (-n 0 wins over the default)
#   OPS_TEST_WORKERS=4 scripts/test.sh       another worker count
# Without arguments the tests marked `serial` run last, alone (see the end).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
scripts/lint.sh

work=$(mktemp -d -t ops-test-XXXXXX)
chmod 755 "$work"  # as root, scripts/postgres.sh runs the cluster as 'postgres', which must reach $work/pg
pg_port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() {
  scripts/postgres.sh stop "$work/pg" || true
  [ -n "${minio_build:-}" ] && kill "$minio_build" 2>/dev/null || true
  scripts/s3.sh stop "$work/s3" || true
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
# Debian's chromium and its driver: tests/browser drive the dashboard through Selenium.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  echo "installing chromium and chromium-driver from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null; }
fi
# MinIO builds (cold: ~15 min, cached after) while daprd does; moto stands in if it fails.
scripts/s3.sh build >/dev/null 2>"$work/minio-build.log" & minio_build=$!
OPS_DAPRD=$(scripts/build-dapr.sh)
export OPS_DAPRD
if ! wait "$minio_build"; then
  echo "MinIO could not be built (see below); the S3 tests use moto's server" >&2
  tail -5 "$work/minio-build.log" >&2
  export OPS_S3_SERVER=moto
fi

# A real S3-compatible server on loopback for the storage tests.
s3_port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
OPS_TEST_S3_KIND=$(scripts/s3.sh start "$s3_port" "$work/s3")
export OPS_TEST_S3_KIND OPS_TEST_S3_ENDPOINT="http://127.0.0.1:$s3_port"

# The tests mostly wait (subprocesses, sockets, PostgreSQL): more workers than cores pays.
# --dist loadgroup hands out single tests, except that an xdist_group (tests/conftest.py)
# runs on one worker. README, Testing: the measurements behind the default.
workers=(-n "${OPS_TEST_WORKERS:-3}" --dist loadgroup)
if [ $# -gt 0 ]; then
  .venv/bin/pytest "${workers[@]}" "$@"
  exit
fi
# The whole suite: the tests marked `serial` (their outcome follows the pace of the machine,
# e.g. the runner's claiming ahead) run afterwards in one process, with nothing else of ours.
status=0
.venv/bin/pytest "${workers[@]}" -m "not serial" || status=$?
.venv/bin/pytest -p no:cacheprovider -m serial || status=$?
exit "$status"
