#!/usr/bin/env bash
# Run every benchmark on SQLite and on PostgreSQL (fsync on) and collect the JSON lines.
#   bench/run_all.sh            -> bench/results/latest.json (+ one .jsonl line per benchmark)
#   PROFILE=1 bench/run_all.sh  -> also py-spy profiles in bench/results/profiles/
# Each benchmark starts and stops the servers (and PostgreSQL cluster) it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
out=bench/results
mkdir -p "$out"
lines="$out/latest.jsonl"
: > "$lines"
profile=()
if [ -n "${PROFILE:-}" ]; then
  .venv/bin/pip install -q py-spy
  profile=(--profile "$out/profiles")
fi

run() {
  echo "== $*" >&2
  "$py" "$@" "${profile[@]}" | tail -n 1 >> "$lines"
}

for db in sqlite postgres; do
  run bench/bench_create.py --db "$db"
  run bench/bench_drain.py --db "$db"
  run bench/bench_latency.py --db "$db"
done
# The same drain with a bigger pool for the default queue (a configuration, not a code change).
run bench/bench_drain.py --db postgres --concurrency 256

"$py" - "$lines" "$out/latest.json" <<'PY'
import json, subprocess, sys, time
results = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
doc = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "commit": commit, "results": results}
json.dump(doc, open(sys.argv[2], "w"), indent=2, sort_keys=True)
print(f"wrote {sys.argv[2]} ({len(results)} results)")
PY
