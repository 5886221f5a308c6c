"""Where a draining worker waits: its runner in this process, sampled every millisecond.

    .venv/bin/python bench/runner_trace.py [--tasks 20000] [--batch 500] [--runs 1]

A PostgreSQL cluster of its own (fsync on) gets `tasks` queued noop tasks (bench_drain.fill);
then the worker's runner (WorkerService's, with its relay) drains them in this process, on
uvloop, while a monitor wakes every millisecond and notes what is in flight: a claim, a finish,
a relay drain, handlers running, tasks claimed ahead waiting for a slot. A monitor that wakes on
time (late by less than 0.3 ms) found the event loop idle: the table's first column. Printed:
the drain's rate and CPU, the claims' sizes, and the share of samples per state, idle ones
first, e.g. `idle claim finish - running -` = the loop waited on a claim and a finish while the
tasks claimed ahead had run out (measured 2026-12-07: the most frequent idle state).

Not a benchmark of the service (no HTTP, no worker process start-up): a diagnosis of the
runner's pipeline, to see whether claims, finishes or the relay hold the loop up.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import uvloop
from _common import database, log, workdir
from bench_drain import fill

from service.bootstrap import build_resources
from service.config import Settings
from worker.service import WorkerService

IDLE_LATE = 0.0003  # a monitor this close to on time found the loop idle


def _counted(state: Counter[str], name: str, call: Callable[..., Awaitable[Any]]) -> Any:
    """`call`, with state[name] counting the calls in flight."""

    async def counted(*args: Any) -> Any:
        state[name] += 1
        try:
            return await call(*args)
        finally:
            state[name] -= 1

    return counted


async def drain(url: str, work: Any, batch: int, tasks: int) -> None:
    settings = Settings(
        database_url=url,
        data_dir=work / "data",
        worker_id="trace",
        migrate_on_start=False,
        claim_batch_size=batch,
    )
    resources = build_resources(settings, "worker")
    runner = WorkerService(resources).runner
    state: Counter[str] = Counter()
    sizes: list[int] = []
    claim = runner._claim

    async def sized(dispatch: Any) -> int:
        sizes.append(await claim(dispatch))
        return sizes[-1]

    runner._claim = _counted(state, "claim", sized)  # type: ignore[method-assign]
    runner._commit = _counted(state, "finish", runner._commit)  # type: ignore[method-assign]
    relay = resources.relay
    relay.drain = _counted(state, "relay", relay.drain)  # type: ignore[method-assign]
    relaying = asyncio.create_task(relay.run())
    samples: Counter[tuple[str, ...]] = Counter()
    done = asyncio.Event()

    async def monitor() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            idle = now - last - 0.001 < IDLE_LATE
            last = now
            ahead = sum(len(q) for q in runner.queued.values())
            running = len(runner.running) - ahead
            samples[
                (
                    "idle" if idle else "busy",
                    "claim" if state["claim"] else "-",
                    "finish" if state["finish"] else "-",
                    "relay" if state["relay"] else "-",
                    "running" if running else "-",
                    "ahead" if ahead else "-",
                )
            ] += 1

    watching = asyncio.create_task(monitor())
    wall, cpu = time.perf_counter(), time.process_time()
    await runner.run(until_idle=True)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    done.set()
    await watching
    relaying.cancel()
    await resources.close()
    log(
        f"{tasks} tasks in {wall:.2f} s = {tasks / wall:,.0f}/s; CPU {cpu:.2f} s "
        f"({cpu / wall:.2f} of a core); {len(sizes)} claims of {sum(sizes) / len(sizes):.0f}"
    )
    total = sum(samples.values())
    for key, count in sorted(samples.items(), key=lambda kv: (kv[0][0] != "idle", -kv[1])):
        print(f"{' '.join(key):45} {count / total:6.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500, help="OPS_CLAIM_BATCH_SIZE")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    with workdir("bench-trace-") as work, database("postgres", work) as db:
        for _ in range(args.runs):
            asyncio.run(fill(db.url, args.tasks, published=True))
            uvloop.run(drain(db.url, work, args.batch, args.tasks))
            asyncio.run(_empty(db.url))


async def _empty(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(
            "TRUNCATE task_events, task_logs, task_attempts, outbox, job_runs, tasks"
        )
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
