"""create -> handler-start latency with an idle worker, in the embedded mode (`common-ops dev`).

    .venv/bin/python bench/bench_latency.py --db sqlite|postgres [--tasks 300] [--gap-ms 20]

One client sends a `noop` create every 20 ms on a keep-alive connection and notes its send
time (the machine's wall clock, just before the request is written). `startedAt` is stamped
by the worker at its claim, right before the claim's UPDATE — the handler starts after that
transaction commits, so send->startedAt is a slight under-estimate of send->handler-start,
and send->completedAt (stamped when the finish transaction begins, after the handler ran)
an over-estimate. Both are reported; the aim is judged on startedAt, as the issue defines it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import uvloop
from _common import (
    Connection,
    Meter,
    Server,
    create_request,
    database,
    emit,
    fresh,
    log,
    machine,
    median,
    percentile,
    profiled,
    workdir,
)

BASE = "/api/v1/operations/tasks"


async def drive(port: int, count: int, gap: float) -> list[tuple[float, str]]:
    """Create `count` tasks `gap` seconds apart; returns (send time, task id) pairs."""
    conn = await Connection.open(port)
    raw = create_request("latency")
    sent: list[tuple[float, str]] = []
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    try:
        for _ in range(count):
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at += gap
            at = time.time()
            status, body = await conn.send(raw)
            if status != 201:
                raise RuntimeError(f"create answered {status}: {body[:300]!r}")
            sent.append((at, json.loads(body)["id"]))
        await asyncio.sleep(0.5)  # let the last ones finish
        return sent
    finally:
        await conn.close()


async def collect(port: int, sent: list[tuple[float, str]]) -> list[dict[str, Any]]:
    conn = await Connection.open(port)
    rows = []
    try:
        for at, task_id in sent:
            raw = Connection.request("GET", f"{BASE}/{task_id}", {"X-User-ID": "latency"})
            status, body = await conn.send(raw)
            task = json.loads(body)
            if status != 200 or task["status"] != "completed":
                raise RuntimeError(f"task {task_id} is not completed: {task}")
            rows.append(
                {
                    "start": datetime.fromisoformat(task["startedAt"]).timestamp() - at,
                    "complete": datetime.fromisoformat(task["completedAt"]).timestamp() - at,
                }
            )
    finally:
        await conn.close()
    return rows


def stats(values: list[float]) -> dict[str, float]:
    return {
        "p50ms": round(1000 * percentile(values, 50), 3),
        "p99ms": round(1000 * percentile(values, 99), 3),
        "maxms": round(1000 * max(values), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--gap-ms", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", type=Path, help="write py-spy profiles of the server here")
    args = parser.parse_args()

    runs: list[dict[str, Any]] = []
    with (
        workdir("bench-latency-") as work,
        database(args.db, work) as db,
        Server("dev", db, work) as server,
    ):
        log(f"dev pid {server.pid} on port {server.port} ({db.kind})")
        for run in range(args.runs):
            fresh(db)
            uvloop.run(drive(server.port, 20, args.gap_ms / 1000))  # warm-up
            out = args.profile and args.profile / f"latency-{db.kind}-{run}.txt"
            with profiled(server.pid, out), Meter({"dev": server.pid}) as meter:
                sent = uvloop.run(drive(server.port, args.tasks, args.gap_ms / 1000))
            rows = uvloop.run(collect(server.port, sent))
            result = {
                "tasks": len(rows),
                "sendToStartedAt": stats([r["start"] for r in rows]),
                "sendToCompletedAt": stats([r["complete"] for r in rows]),
                **meter.result,
            }
            log(f"run {run}: {result}")
            runs.append(result)
        command = server.command
    emit(
        {
            "bench": "latency",
            "db": db.kind,
            "dbInfo": db.info,
            "machine": machine(),
            "server": command,
            "gapMs": args.gap_ms,
            "sendToStartedAt": {
                k: round(median([r["sendToStartedAt"][k] for r in runs]), 3)
                for k in ("p50ms", "p99ms")
            },
            "sendToCompletedAt": {
                k: round(median([r["sendToCompletedAt"][k] for r in runs]), 3)
                for k in ("p50ms", "p99ms")
            },
            "runs": runs,
            "aims": {"embeddedP99ms": 4.0},
        }
    )


if __name__ == "__main__":
    main()
