"""Two versions of the API side by side: 16 clients' creates in alternating bursts.

    .venv/bin/python bench/ab_create.py OLD_CHECKOUT [--rounds 16] [--per-client 100] [--workers 2]

OLD_CHECKOUT is another checkout of the repository (e.g. `git worktree add /tmp/old REV`); its
`service` package runs the first server (PYTHONPATH), this checkout's the second, both as
`common-ops api --workers N` on one PostgreSQL database. Each round sends a burst to one and then
to the other (the order alternating), and the ratio is taken per round: this machine's pace moves
within seconds (a fixed pure-Python workload took 309 to 654 ms of CPU a second apart), so only
figures taken at the same moment compare. Prints each round and the medians: creates/s, API and
PostgreSQL CPU a create.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import uvloop
from _common import Meter, Server, database, fresh, log, postgres_cpu, tree_cpu, workdir
from bench_create import load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("old", type=Path, help="a checkout of the version to compare with")
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--per-client", type=int, default=100)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    workers = ["--workers", str(args.workers)]
    with workdir("ab-create-") as work, database("postgres", work) as db:
        pg = postgres_cpu(Path(db.info["dataDir"]))
        old_env = {"PYTHONPATH": str(args.old.resolve())}
        with (
            Server("api", db, work, args=workers, env=old_env) as old,
            Server("api", db, work, args=workers) as new,
        ):
            servers = {"old": old, "new": new}
            for server in servers.values():
                uvloop.run(load(server.port, 4, 100))  # warm up
            fresh(db)
            results: dict[str, list[tuple[float, float, float]]] = {k: [] for k in servers}
            for round_ in range(args.rounds):
                order = ["old", "new"] if round_ % 2 == 0 else ["new", "old"]
                for name in order:
                    server = servers[name]
                    with Meter({"api": tree_cpu(server.pid), "pg": pg}) as meter:
                        out = uvloop.run(load(server.port, args.clients, args.per_client))
                    n = out["requests"]
                    api_ms = 1000 * meter.result["apiCpuSeconds"] / n
                    pg_ms = 1000 * meter.result["pgCpuSeconds"] / n
                    results[name].append((out["tasksPerSecond"], api_ms, pg_ms))
                log(f"round {round_}: old {results['old'][-1]}, new {results['new'][-1]}")
            for name, rows in results.items():
                rate, api, pg_ms = (statistics.median(r[i] for r in rows) for i in range(3))
                print(f"{name}: {rate:,.0f} creates/s, API {api:.3f} ms, PostgreSQL {pg_ms:.3f} ms")
            ratios = [n[0] / o[0] for o, n in zip(results["old"], results["new"], strict=True)]
            print(f"new/old per round: {[round(r, 2) for r in ratios]}")
            print(f"median {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
