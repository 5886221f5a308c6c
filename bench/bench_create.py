"""create-task over HTTP against a real uvicorn API process: 1 client and 16 concurrent clients.

    .venv/bin/python bench/bench_create.py --db sqlite|postgres [--runs 3] [--profile DIR]

The API runs as `common-ops api --port P` (a child process); this process is the load
generator, speaking keep-alive HTTP/1.1 over loopback (a lean client: httpx would cost
more CPU than the server on a 2-core machine). Prints one JSON line; medians over the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable
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
    postgres_cpu,
    profiled,
    statements_reset,
    top_statements,
    track_statements,
    tree_cpu,
    workdir,
)


async def _client(port: int, count: int, latencies: list[float], user: str) -> None:
    conn = await Connection.open(port)
    raw = create_request(user)
    try:
        for _ in range(count):
            start = time.perf_counter()
            status, body = await conn.send(raw)
            latencies.append(time.perf_counter() - start)
            if status != 201:
                raise RuntimeError(f"create answered {status}: {body[:300]!r}")
    finally:
        await conn.close()


async def load(port: int, clients: int, per_client: int) -> dict[str, Any]:
    latencies: list[float] = []
    start = time.perf_counter()
    await asyncio.gather(
        *(_client(port, per_client, latencies, f"bench-{i}") for i in range(clients))
    )
    elapsed = time.perf_counter() - start
    return {
        "requests": len(latencies),
        "seconds": round(elapsed, 3),
        "tasksPerSecond": round(len(latencies) / elapsed, 1),
        "p50ms": round(percentile(latencies, 50) * 1000, 3),
        "p99ms": round(percentile(latencies, 99) * 1000, 3),
        "maxms": round(max(latencies) * 1000, 3),
    }


def measured(
    server: Server,
    clients: int,
    per_client: int,
    profile: Path | None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`load` with the API's CPU (and that of the `extra` Meter groups, e.g. PostgreSQL)."""
    groups: dict[str, int | Callable[[], float]] = {"api": tree_cpu(server.pid), **(extra or {})}
    with profiled(server.pid, profile), Meter(groups) as meter:
        result = uvloop.run(load(server.port, clients, per_client))
    result.update(meter.result)
    for name in groups:
        key = "apiCpuMsPerRequest" if name == "api" else f"{name}CpuMsPerRequest"
        result[key] = round(1000 * meter.result[f"{name}CpuSeconds"] / result["requests"], 3)
    return result


BATCH_PATH = "/api/v1/operations/tasks:batch"


async def batch_probe(port: int) -> tuple[int, bytes]:
    """One batch create of one noop task: (status, body). 404/405 = not available."""
    conn = await Connection.open(port)
    try:
        body = json.dumps({"tasks": [{"taskType": "noop"}]}).encode()
        return await conn.send(Connection.request("POST", BATCH_PATH, {"X-User-ID": "b"}, body))
    finally:
        await conn.close()


async def batch_load(port: int, clients: int, batches: int, size: int) -> dict[str, Any]:
    """`batches` batch creates of `size` noop tasks each (`POST /tasks:batch`, body
    `{"tasks": [{"taskType": "noop"}, ...]}`) from `clients` keep-alive connections; any 2xx
    counts as accepted (the caller counts the rows afterwards)."""
    body = json.dumps({"tasks": [{"taskType": "noop"}] * size}).encode()
    latencies: list[float] = []
    left = batches

    async def client(i: int) -> None:
        nonlocal left
        conn = await Connection.open(port)
        raw = Connection.request("POST", BATCH_PATH, {"X-User-ID": f"bench-{i}"}, body)
        try:
            while left > 0:
                left -= 1
                start = time.perf_counter()
                status, answer = await conn.send(raw)
                latencies.append(time.perf_counter() - start)
                if not 200 <= status < 300:
                    raise RuntimeError(f"batch create answered {status}: {answer[:300]!r}")
        finally:
            await conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    elapsed = time.perf_counter() - start
    return {
        "batches": len(latencies),
        "batchSize": size,
        "clients": clients,
        "seconds": round(elapsed, 3),
        "tasksPerSecond": round(len(latencies) * size / elapsed, 1),
        "batchP50ms": round(percentile(latencies, 50) * 1000, 3),
        "batchP99ms": round(percentile(latencies, 99) * 1000, 3),
    }


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("tasksPerSecond", "p50ms", "p99ms", "apiCpuMsPerRequest", "machineBusyCores")
    return {**{k: round(median([r[k] for r in runs]), 3) for k in keys}, "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--single", type=int, default=1000, help="requests of the 1-client run")
    parser.add_argument("--per-client", type=int, default=150, help="requests per client at 16")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--profile", type=Path, help="write py-spy profiles of the API here")
    parser.add_argument(
        "--api-workers", type=int, default=1, help="API processes (`common-ops api --workers N`)"
    )
    parser.add_argument(
        "--statements",
        type=int,
        default=0,
        metavar="N",
        help="PostgreSQL: report the N statements that took most of the server's time at 16",
    )
    args = parser.parse_args()
    if args.statements and args.db == "postgres":
        track_statements()

    with (
        workdir("bench-create-") as work,
        database(args.db, work) as db,
        Server("api", db, work, args=["--workers", str(args.api_workers)]) as server,
    ):
        log(f"API pid {server.pid} on port {server.port} ({db.kind})")
        single, many = [], []
        extra: dict[str, int | Callable[[], float]] = {}
        if db.kind == "postgres":
            extra["postgres"] = postgres_cpu(Path(db.info["dataDir"]))
        for run in range(args.runs):
            fresh(db)
            uvloop.run(load(server.port, 4, args.warmup // 4))
            out = args.profile
            single.append(
                measured(
                    server, 1, args.single, out and out / f"create-{db.kind}-1-{run}.txt", extra
                )
            )
            log(f"run {run} 1 client: {single[-1]}")
            if args.statements and db.kind == "postgres":
                statements_reset(db)
            many.append(
                measured(
                    server,
                    args.clients,
                    args.per_client,
                    out and out / f"create-{db.kind}-{args.clients}-{run}.txt",
                    extra,
                )
            )
            if args.statements and db.kind == "postgres":
                many[-1]["statements"] = top_statements(db, args.statements)
            log(f"run {run} {args.clients} clients: {many[-1]}")
        command = server.command
    emit(
        {
            "bench": "create",
            "db": db.kind,
            "dbInfo": db.info,
            "machine": machine(),
            "server": command,
            "oneClient": summarize(single),
            f"clients{args.clients}": summarize(many),
            "aims": {"oneClientP99ms": 5.0, "clients16TasksPerSecond": 2000},
        }
    )


if __name__ == "__main__":
    main()
