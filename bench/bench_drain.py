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

While it drains, the completed tasks are counted every 50 ms on one kept connection, the
way ../shared/peers/common.py `drain_poll` does, which gives the peers' W2 figures too:
drain_s = worker spawn -> all completed (start-up included), startup_s = spawn -> first poll
that saw a completion, steady_tps = the completions after that poll / the time from it to
the end. Worker (and PostgreSQL) CPU per task is taken over that steady window.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sqlite3
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
from _common import (
    Database,
    Meter,
    Server,
    cpu_seconds,
    database,
    emit,
    fresh,
    log,
    machine,
    median,
    postgres_cpu,
    profiled,
    rss_bytes,
    statements_reset,
    top_statements,
    track_statements,
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
                        func.min(T.c.completed_at),
                    )
                )
            ).one()
    finally:
        await engine.dispose()
    return {
        "completed": row[0],
        "total": row[1],
        "first": row[2],
        "last": row[3],
        "firstCompleted": row[4],
    }


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


class Counter:
    """Cheap counts on one kept connection: completed tasks, unpublished outbox rows."""

    def __init__(self, db: Database) -> None:
        self.kind = db.kind
        if db.kind == "postgres":
            self.loop = asyncio.new_event_loop()
            dsn = db.url.replace("postgresql+asyncpg://", "postgresql://")
            self.conn = self.loop.run_until_complete(asyncpg.connect(dsn))
        else:
            self.lite = sqlite3.connect(db.info["file"], timeout=30)

    def _one(self, sql: str) -> int:
        if self.kind == "postgres":
            return int(self.loop.run_until_complete(self.conn.fetchval(sql)))
        return int(self.lite.execute(sql).fetchone()[0])

    def completed(self) -> int:
        return self._one("SELECT count(*) FROM tasks WHERE status = 'completed'")

    def unpublished(self) -> int:
        return self._one("SELECT count(*) FROM outbox WHERE published_at IS NULL")

    def close(self) -> None:
        if self.kind == "postgres":
            self.loop.run_until_complete(self.conn.close())
            self.loop.close()
        else:
            self.lite.close()


def _thin(samples: list[tuple[float, int, int]], keep: int = 120) -> list[list[float]]:
    step = max(1, len(samples) // keep)
    picked = samples[::step]
    if samples and picked[-1] is not samples[-1]:
        picked.append(samples[-1])
    return [[round(t, 2), done, round(rss / 2**20, 1)] for t, done, rss in picked]


def _all_running(workers: list[Server]) -> None:
    for w in workers:
        if w.proc.poll() is not None:
            raise RuntimeError(f"worker exited early: {w.log_path.read_text()[-2000:]}")


def drain(
    db: Database,
    work: Path,
    tasks: int,
    *,
    env: dict[str, str],
    timeout: float = 600.0,
    poll: float = 0.05,
    profile: Path | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """Spawn `workers` worker processes on the queued tasks (replicas: each its own worker id)
    and time the drain as the peers do; see the module docstring. Also: the first worker's RSS
    (sampled at each poll), when the outbox was all published, and the worker's command line.
    Raises if the drain times out or a worker exits. Worker CPU is summed over the replicas."""
    counter = Counter(db)
    extra: dict[str, Any] = {}
    if db.kind == "postgres":
        extra["postgres"] = postgres_cpu(Path(db.info["dataDir"]))
    t_spawn = time.perf_counter()
    spawned_at = time.time()
    worker = Server("worker", db, work, env=env)
    replicas = [
        Server("worker", db, work, env={**env, "OPS_WORKER_ID": f"{env['OPS_WORKER_ID']}-{i}"})
        for i in range(1, workers)
    ]
    every = [worker, *replicas]
    samples: list[tuple[float, int, int]] = []  # (seconds since spawn, completed, RSS bytes)
    meter = Meter({"worker": lambda: sum(cpu_seconds(w.pid) for w in every), **extra})
    first: tuple[float, int, float] | None = None  # (when, completed, worker CPU since spawn)
    ready = None
    try:
        with contextlib.ExitStack() as stack:
            while True:
                done = counter.completed()
                now = time.perf_counter()
                rss = rss_bytes(worker.pid)
                if rss is not None:
                    samples.append((now - t_spawn, done, rss))
                if first is None and done > 0:
                    first = (now, done, sum(cpu_seconds(w.pid) for w in every))
                    meter.__enter__()
                if ready is None and all(w.live() for w in every):
                    ready = now
                    stack.enter_context(profiled(worker.pid, profile))
                if done >= tasks:
                    break
                if now - t_spawn > timeout:
                    raise TimeoutError(f"drain incomplete after {timeout}s: {done}/{tasks}")
                _all_running(every)
                time.sleep(poll)
            t_done = now
            assert first is not None
            meter.__exit__(None, None, None)
        worker_cpu_total = sum(cpu_seconds(w.pid) for w in every)
        # the relay publishes the last outbox rows right after the last commit
        deadline = time.monotonic() + 30
        while counter.unpublished() and time.monotonic() < deadline:
            time.sleep(poll)
        published = time.perf_counter() - t_done
        command = worker.command
    finally:
        for w in every:
            w.stop()
        counter.close()
    steady_n, steady_s = tasks - first[1], t_done - first[0]
    per = max(1, steady_n)
    rss_mib = [rss / 2**20 for _, _, rss in samples]
    out: dict[str, Any] = {
        # the peers' W2 fields (../shared/peers/common.py drain_poll)
        "n": tasks,
        "drain_s": round(t_done - t_spawn, 3),
        "drain_tps": round(tasks / (t_done - t_spawn), 1),
        "startup_s": round(first[0] - t_spawn, 3),
        "steady_tps": round(steady_n / steady_s, 1) if steady_n > 0 and steady_s > 0 else None,
        "poll_ms": poll * 1000,
        # ours
        "readySeconds": round(ready - t_spawn, 3) if ready is not None else None,
        "outboxPublishedSecondsAfterDone": round(published, 3),
        "steadyWindow": {"tasks": steady_n, **meter.result},
        "workerCpuMsPerTask": round(1000 * meter.result["workerCpuSeconds"] / per, 3),
        "workerStartupCpuSeconds": round(first[2], 3),
        "workerCpuSecondsTotal": round(worker_cpu_total, 3),
        "workerRssMiB": {
            "atFirstCompletion": round(next(r for t, d, r in samples if d > 0) / 2**20, 1)
            if any(d > 0 for _, d, _ in samples)
            else None,
            "end": round(rss_mib[-1], 1) if rss_mib else None,
            "peak": round(max(rss_mib), 1) if rss_mib else None,
            "samples": _thin(samples),
        },
        "worker": command,
        "workers": workers,
        "spawnedAt": spawned_at,
    }
    if "postgres" in extra:
        out["postgresCpuMsPerTask"] = round(1000 * meter.result["postgresCpuSeconds"] / per, 3)
    return out


def one_run(db: Database, work: Path, args: argparse.Namespace, run: int) -> dict[str, Any]:
    fresh(db)
    filled = asyncio.run(fill(db.url, args.tasks, published=not args.unpublished))
    log(f"run {run}: queued {args.tasks} tasks in {filled:.1f}s")
    env = {"OPS_WORKER_ID": f"bench-worker-{run}"}
    if args.concurrency:  # a tuned run: a bigger pool lets one transaction carry more tasks
        env["OPS_WORKER_CONCURRENCY__DEFAULT"] = str(args.concurrency)
        env["OPS_CLAIM_BATCH_SIZE"] = str(min(1000, args.concurrency))
    out = args.profile and args.profile / f"drain-{db.kind}-{run}.txt"
    if args.statements and db.kind == "postgres":
        statements_reset(db)
    drained = drain(
        db, work, args.tasks, env=env, timeout=args.timeout, profile=out, workers=args.workers
    )
    if args.statements and db.kind == "postgres":
        drained["statements"] = top_statements(db, args.statements)
    state = asyncio.run(progress(db.url))
    seconds = (state["last"] - state["first"]).total_seconds()
    # when the workers stamped their first start and first completion, from the spawn (wall
    # clocks of the same machine): where a start-up's time goes before the poll sees it
    spawned = drained.pop("spawnedAt")
    drained["firstStartSeconds"] = round(state["first"].timestamp() - spawned, 3)
    drained["firstCompletionSeconds"] = round(state["firstCompleted"].timestamp() - spawned, 3)
    checks = asyncio.run(verify(db.url, args.tasks))
    result = {
        "tasks": args.tasks,
        "fillSeconds": round(filled, 2),
        "drainSeconds": round(seconds, 3),
        "tasksPerSecond": round(args.tasks / seconds, 1),
        **drained,
        "checks": checks,
    }
    shown = {k: v for k, v in result.items() if k not in ("workerRssMiB", "worker")}
    log(f"run {run}: {shown}")
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
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes (replicas) draining together"
    )
    parser.add_argument("--profile", type=Path, help="write py-spy profiles of the worker here")
    parser.add_argument(
        "--statements",
        type=int,
        default=0,
        metavar="N",
        help="PostgreSQL: report the N statements that took most of the server's time in each "
        "drain",
    )
    args = parser.parse_args()
    if args.statements and args.db == "postgres":
        track_statements()

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
