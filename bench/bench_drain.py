"""drain: N queued `noop` tasks -> completed by one worker process.

    .venv/bin/python bench/bench_drain.py --db sqlite|postgres [--tasks 10000] [--runs 3]

Before each run the queue is filled quickly: one task goes through the real create use case
(service.usecases.tasks.create), and the other N-1 are copies of exactly the rows it wrote
(task row, `created` event row, outbox row), inserted in a few large transactions. The
`created` outbox rows are marked published, as the API's relay would have done before the
worker starts (pass --unpublished to leave them to the worker's relay as well).

Then `common-ops worker --port P` starts (a separate process) and drains the queue.
Throughput = N / (last completedAt - first startedAt), both stamped by the worker; the
worker's start-up is not counted. Afterwards every task is checked: completed, one attempt
row (outcome completed), three event rows and three outbox rows (created, started, completed).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

from _common import (
    Database,
    Meter,
    Server,
    database,
    emit,
    fresh,
    log,
    machine,
    median,
    profiled,
    workdir,
)
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import create_async_engine

from service.bootstrap import build_catalog
from service.clock import utcnow
from service.config import Settings
from service.db.engine import create_sessionmaker, session_scope
from service.db.tables import (
    attempts_table as A,
    events_table as E,
    outbox_table as O,
    tasks_table as T,
)
from service.db.unit_of_work import unit_of_work
from service.domain.callers import Caller
from service.usecases import tasks as task_usecases

BATCH = 2500


async def fill(url: str, count: int, *, published: bool) -> float:
    """Queue `count` noop tasks; returns the seconds it took."""
    engine = create_async_engine(url)
    sessionmaker = create_sessionmaker(engine)
    start = time.perf_counter()
    try:
        async with unit_of_work(sessionmaker) as uow:
            template, _ = await task_usecases.create(
                uow,
                Caller("bench", frozenset()),
                task_usecases.NewTask(task_type="noop"),
                now=utcnow(),
                catalog=build_catalog(Settings()),
            )
        async with session_scope(sessionmaker) as session:
            task = (await session.execute(select(T).where(T.c.id == template.id))).one()._asdict()
            event = (await session.execute(select(E).where(E.c.task_id == template.id))).one()
            outbox = (await session.execute(select(O).where(O.c.task_id == template.id))).one()
            event_row = {k: v for k, v in event._asdict().items() if k != "id"}
            outbox_row = {k: v for k, v in outbox._asdict().items() if k != "id"}
            if published:
                outbox_row["published_at"] = utcnow()
                await session.execute(
                    update(O).where(O.c.id == outbox.id).values(published_at=utcnow())
                )
        base = task["created_at"]
        for first in range(1, count, BATCH):
            tasks, events, outboxes = [], [], []
            for i in range(first, min(count, first + BATCH)):
                task_id = uuid4()
                # distinct creation times keep the claim order (available_at, id) realistic
                at = base + timedelta(microseconds=i)
                tasks.append(
                    {**task, "id": task_id, "created_at": at, "updated_at": at, "available_at": at}
                )
                events.append({**event_row, "task_id": task_id, "created_at": at})
                payload = {**outbox_row["payload"], "id": str(task_id)}
                outboxes.append(
                    {**outbox_row, "task_id": task_id, "payload": payload, "created_at": at}
                )
            async with session_scope(sessionmaker) as session:
                await session.execute(T.insert(), tasks)
                await session.execute(E.insert(), events)
                await session.execute(O.insert(), outboxes)
    finally:
        await engine.dispose()
    return time.perf_counter() - start


async def progress(url: str) -> dict[str, Any]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    select(
                        func.count().filter(T.c.status == "completed"),
                        func.count(),
                        func.min(T.c.started_at),
                        func.max(T.c.completed_at),
                    )
                )
            ).one()
    finally:
        await engine.dispose()
    return {"completed": row[0], "total": row[1], "first": row[2], "last": row[3]}


async def verify(url: str, count: int) -> dict[str, Any]:
    """Every guarantee the drain must keep, counted."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:

            async def scalar(stmt: Any) -> int:
                return int((await conn.execute(stmt)).scalar_one())

            checks = {
                "completedTasks": await scalar(
                    select(func.count()).where(T.c.status == "completed", T.c.attempts == 1)
                ),
                "completedAttempts": await scalar(
                    select(func.count())
                    .select_from(A)
                    .where(A.c.outcome == "completed", A.c.finished_at.is_not(None))
                ),
                "eventRows": await scalar(select(func.count()).select_from(E)),
                "outboxRows": await scalar(select(func.count()).select_from(O)),
                "outboxUnpublished": await scalar(
                    select(func.count()).select_from(O).where(O.c.published_at.is_(None))
                ),
            }
    finally:
        await engine.dispose()
    expected = {
        "completedTasks": count,
        "completedAttempts": count,
        "eventRows": 3 * count,
        "outboxRows": 3 * count,
    }
    checks["ok"] = all(checks[k] == v for k, v in expected.items())
    return checks


def one_run(db: Database, work: Path, args: argparse.Namespace, run: int) -> dict[str, Any]:
    fresh(db)
    filled = asyncio.run(fill(db.url, args.tasks, published=not args.unpublished))
    log(f"run {run}: queued {args.tasks} tasks in {filled:.1f}s")
    env = {"OPS_WORKER_ID": f"bench-worker-{run}"}
    if args.concurrency:  # a tuned run: a bigger pool lets one transaction carry more tasks
        env["OPS_WORKER_CONCURRENCY__DEFAULT"] = str(args.concurrency)
        env["OPS_CLAIM_BATCH_SIZE"] = str(min(1000, args.concurrency))
    with Server("worker", db, work, env=env) as worker:
        out = args.profile and args.profile / f"drain-{db.kind}-{run}.txt"
        with profiled(worker.pid, out), Meter({"worker": worker.pid}) as meter:
            deadline = time.monotonic() + args.timeout
            state = asyncio.run(progress(db.url))
            while state["completed"] < args.tasks and time.monotonic() < deadline:
                time.sleep(0.25)
                state = asyncio.run(progress(db.url))
            # the relay publishes the last outbox rows right after the last commit
            time.sleep(0.5)
        command = worker.command
    if state["completed"] < args.tasks:
        raise RuntimeError(f"drain timed out: {state}")
    seconds = (state["last"] - state["first"]).total_seconds()
    checks = asyncio.run(verify(db.url, args.tasks))
    result = {
        "tasks": args.tasks,
        "fillSeconds": round(filled, 2),
        "drainSeconds": round(seconds, 3),
        "tasksPerSecond": round(args.tasks / seconds, 1),
        "workerCpuMsPerTask": round(1000 * meter.result["workerCpuSeconds"] / args.tasks, 3),
        **meter.result,
        "checks": checks,
        "worker": command,
    }
    log(f"run {run}: {result}")
    if not checks["ok"]:
        raise RuntimeError(f"drain broke a guarantee: {checks}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--unpublished", action="store_true")
    parser.add_argument(
        "--concurrency", type=int, help="size of the worker's default queue (default: settings)"
    )
    parser.add_argument("--profile", type=Path, help="write py-spy profiles of the worker here")
    args = parser.parse_args()

    with workdir("bench-drain-") as work, database(args.db, work) as db:
        runs = [one_run(db, work, args, run) for run in range(args.runs)]
    emit(
        {
            "bench": "drain",
            "db": db.kind,
            "dbInfo": db.info,
            "machine": machine(),
            "createdOutboxRowsPublished": not args.unpublished,
            "defaultQueueConcurrency": args.concurrency or "default (16)",
            "tasksPerSecond": median([r["tasksPerSecond"] for r in runs]),
            "workerCpuMsPerTask": median([r["workerCpuMsPerTask"] for r in runs]),
            "runs": runs,
            "aims": {"postgresTasksPerSecond": 4500},
        }
    )


if __name__ == "__main__":
    main()
