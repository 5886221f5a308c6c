"""Print bench/results/latest.json as the Markdown table of bench/README.md.

.venv/bin/python bench/summarize.py [bench/results/latest.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

DEFAULT = Path(__file__).parent / "results" / "latest.json"


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(what, measured median, aim, measured/aim) rows of one benchmark result."""
    db = result["db"]
    if result["bench"] == "create":
        one, many = result["oneClient"], result["clients16"]
        return [
            (
                f"create, 1 client, {db}",
                f"p50 {one['p50ms']:.1f} ms, p99 {one['p99ms']:.1f} ms, "
                f"{one['tasksPerSecond']:.0f}/s; API CPU {one['apiCpuMsPerRequest']:.1f} ms/req",
                "p99 ≤ 5 ms",
                f"{one['p99ms'] / 5:.1f}x the aim",
            ),
            (
                f"create, 16 clients, {db}",
                f"{many['tasksPerSecond']:.0f}/s, p50 {many['p50ms']:.0f} ms, "
                f"p99 {many['p99ms']:.0f} ms; API CPU {many['apiCpuMsPerRequest']:.1f} ms/req",
                "≥ 2,000/s",
                f"{many['tasksPerSecond'] / 2000:.1%} of the aim",
            ),
        ]
    if result["bench"] == "drain":
        pool = result.get("defaultQueueConcurrency", "default (16)")
        return [
            (
                f"drain 10,000 noop, {db}, pool {pool}",
                f"{result['tasksPerSecond']:.0f}/s; worker CPU "
                f"{result['workerCpuMsPerTask']:.2f} ms/task",
                "≥ 4,500/s (PostgreSQL)",
                f"{result['tasksPerSecond'] / 4500:.1%} of the aim",
            )
        ]
    started, completed = result["sendToStartedAt"], result["sendToCompletedAt"]
    return [
        (
            f"create→handler start, embedded, {db}",
            f"startedAt p50 {started['p50ms']:.1f} ms, p99 {started['p99ms']:.1f} ms "
            f"(completedAt p50 {completed['p50ms']:.1f}, p99 {completed['p99ms']:.1f})",
            "p99 ≤ 4 ms",
            f"{started['p99ms'] / 4:.1f}x the aim",
        )
    ]


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    doc = json.loads(path.read_text())
    print(f"Results of {doc['when']} at commit {doc['commit']} (medians over the runs)\n")
    print("| benchmark | measured (median) | aim | vs aim |")
    print("|---|---|---|---|")
    for result in doc["results"]:
        for row in rows(result):
            print("| " + " | ".join(row) + " |")
    busy = sorted(
        {
            run["machineBusyCores"]
            for result in doc["results"]
            for run in result.get("runs", [])
            + result.get("oneClient", {}).get("runs", [])
            + result.get("clients16", {}).get("runs", [])
            if isinstance(run, dict) and run.get("machineBusyCores") is not None
        }
    )
    if busy:
        print(f"\nWhole-machine CPU busy during the runs: {busy[0]} to {busy[-1]} of 2 cores.")


if __name__ == "__main__":
    main()
