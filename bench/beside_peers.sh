#!/usr/bin/env bash
# Common-Operations beside ../shared/peers in one run, as ratios (issue 10). See bench/README.md.
#   bench/beside_peers.sh                                   # RUNS=1, peers "w4 celery pgqueuer", ~7 min
#   bench/beside_peers.sh --runs 2 --dapr --batch-create --memory
#   W1_N=500 W2_N=1000 W3_N=50 W4_SECONDS=3 bench/beside_peers.sh   # smoke, ~2 min
# Arguments go to bench/beside_peers.py (--help); the peers' size variables pass through.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/python bench/beside_peers.py "$@"
