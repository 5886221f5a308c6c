"""GET /analytics at 1,000,000 tasks over 90 days, through a real uvicorn API process.

    .venv/bin/python bench/bench_analytics.py --db postgres|sqlite [--tasks N] [--requests N]

Fills the tasks table in bulk (PostgreSQL: one INSERT … SELECT over generate_series; SQLite:
executemany, 50,000 rows a transaction) with tasks spread over 90 days — 8 type/entity
kinds, 20 owners, 90 % completed, 7 % failed (20 messages), 2 % cancelled, 1 % pending,
log-normal run times and waits, 70 % of them in working hours — builds the rollup with the
real job (service.usecases.analytics.roll_up), then adds a live tail (tasks created after the
watermark, as the 30 s between rollup runs leaves them) and times 7/30/90-day answers for an
admin and for one user, each ≥ 50 sequential requests after a warm-up. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import random
import sqlite3
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvloop
from _common import (
    Connection,
    Database,
    Server,
    _psql,
    database,
    emit,
    log,
    machine,
    percentile,
    workdir,
)

#: (task type, entity type, queue, typical run time in ms)
KINDS = [
    ("import", "product", "bulk", 40_000),
    ("import", "customer", "bulk", 20_000),
    ("export", "order", "bulk", 30_000),
    ("export", "product", "bulk", 25_000),
    ("maintenance", "cleanup-old-tasks", "default", 2_000),
    ("notification-batch", None, "default", 8_000),
    ("data-sync", None, "default", 5_000),
    ("sleep", None, "default", 300),
]
OWNERS = 20
MESSAGES = 20
USER = "user-3"

_PG_FILL = """
WITH g AS (
  SELECT i, (i % {kinds}) AS kind, random() AS r1, random() AS r2, random() AS r3,
         random() AS r4, random() AS r5, random() AS r6
  FROM generate_series(1, {n}) AS i
), h AS (
  SELECT g.*, k.task_type, k.entity_type, k.queue, k.run_ms,
    least(now(), date_trunc('day', now() - r1 * interval '90 days')
      + CASE WHEN r5 < 0.7 THEN 8 + r6 * 10 ELSE r6 * 24 END * interval '1 hour') AS created,
    CASE WHEN r2 < 0.90 THEN 'completed' WHEN r2 < 0.97 THEN 'failed'
         WHEN r2 < 0.99 THEN 'cancelled' ELSE 'pending' END AS status,
    exp(r3 * 9) * interval '1 millisecond' AS wait,
    k.run_ms * exp(r4 * 2 - 1) * interval '1 millisecond' AS run
  FROM g JOIN (VALUES {values}) AS k(kind, task_type, entity_type, queue, run_ms) USING (kind)
)
INSERT INTO tasks (id, task_type, entity_type, status, priority, queue, requested_by, params,
  progress, processed_items, succeeded_items, failed_items, available_at, started_at,
  completed_at, error_message, retry_count, auto_retries, max_retries, attempts,
  cancel_requested, tags, version, created_at, updated_at)
SELECT gen_random_uuid(), task_type, entity_type, status, 1, queue, 'user-' || (i % {owners}),
  '{{}}'::jsonb, 100, 0, 0, 0, created,
  CASE WHEN status = 'pending' THEN NULL ELSE created + wait END,
  CASE WHEN status = 'pending' THEN NULL ELSE created + wait + run END,
  CASE WHEN status = 'failed' THEN 'error ' || (i % {messages}) || ': the sink refused a batch'
  END,
  CASE WHEN r6 < 0.05 THEN 1 ELSE 0 END, 0, 3, CASE WHEN status = 'pending' THEN 0
  WHEN r6 < 0.05 THEN 2 ELSE 1 END, false, '[]'::jsonb, 1, created,
  CASE WHEN status = 'pending' THEN created ELSE created + wait + run END
FROM h
"""


def _sql_text(value: str | None) -> str:
    return "NULL::text" if value is None else f"'{value}'"


def fill_postgres(db: Database, n: int) -> None:
    values = ", ".join(
        f"({i}, '{t}', {_sql_text(e)}, '{q}', {ms})" for i, (t, e, q, ms) in enumerate(KINDS)
    )
    sql = _PG_FILL.format(kinds=len(KINDS), n=n, values=values, owners=OWNERS, messages=MESSAGES)
    _psql(db.info["port"], sql, db=db.info["dbname"])
    _psql(db.info["port"], "VACUUM ANALYZE tasks", db=db.info["dbname"])


def _sqlite_row(i: int, now: datetime, rng: random.Random) -> tuple[Any, ...]:
    task_type, entity, queue, run_ms = KINDS[i % len(KINDS)]
    day = (now - timedelta(days=rng.random() * 90)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    hours = 8 + rng.random() * 10 if rng.random() < 0.7 else rng.random() * 24
    created = min(now, day + timedelta(hours=hours))
    r = rng.random()
    status = (
        "completed"
        if r < 0.90
        else "failed"
        if r < 0.97
        else "cancelled"
        if r < 0.99
        else "pending"
    )
    retried = rng.random() < 0.05
    started = completed = None
    updated = created
    if status != "pending":
        started = created + timedelta(milliseconds=math.exp(rng.random() * 9))
        completed = started + timedelta(milliseconds=run_ms * math.exp(rng.random() * 2 - 1))
        updated = completed
    error = f"error {i % MESSAGES}: the sink refused a batch" if status == "failed" else None

    def text(moment: datetime | None) -> str | None:
        return None if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S.%f")

    return (
        uuid.uuid4().hex,
        task_type,
        entity,
        status,
        1,
        queue,
        f"user-{i % OWNERS}",
        "{}",
        100,
        0,
        0,
        0,
        text(created),
        text(started),
        text(completed),
        error,
        int(retried),
        0,
        3,
        0 if status == "pending" else 1 + int(retried),
        0,
        "[]",
        1,
        text(created),
        text(updated),
    )


def fill_sqlite(db: Database, n: int) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    rng = random.Random(7)
    sql = (
        "INSERT INTO tasks (id, task_type, entity_type, status, priority, queue, requested_by,"
        " params, progress, processed_items, succeeded_items, failed_items, available_at,"
        " started_at, completed_at, error_message, retry_count, auto_retries, max_retries,"
        " attempts, cancel_requested, tags, version, created_at, updated_at)"
        " VALUES (" + ", ".join("?" * 25) + ")"
    )
    with contextlib.closing(sqlite3.connect(db.info["file"])) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        for start in range(0, n, 50_000):
            rows = [_sqlite_row(i, now, rng) for i in range(start, min(n, start + 50_000))]
            conn.executemany(sql, rows)
            conn.commit()
        conn.execute("ANALYZE")


async def _roll_up(url: str, work: Path) -> str:
    from service.bootstrap import build_resources
    from service.config import Settings
    from service.usecases import analytics

    settings = Settings(
        environment="dev", database_url=url, data_dir=work / "data-bench", log_level="warning"
    )
    resources = build_resources(settings, "bench")
    try:
        async with resources.unit() as uow:
            return await analytics.roll_up(uow, now=datetime.now(UTC))
    finally:
        await resources.close()


async def _tail(url: str, work: Path, count: int) -> None:
    """Tasks created after the watermark, as the API makes them (through the use case)."""
    from service.bootstrap import build_resources
    from service.config import Settings
    from service.db.repositories.tasks import to_row
    from service.db.tables import tasks_table
    from service.domain.tasks import Priority, TaskStatus, new_task

    settings = Settings(
        environment="dev", database_url=url, data_dir=work / "data-bench", log_level="warning"
    )
    resources = build_resources(settings, "bench")
    now = datetime.now(UTC)
    rows = [
        to_row(
            new_task(
                task_id=uuid.uuid4(),
                task_type=KINDS[i % len(KINDS)][0],
                entity_type=KINDS[i % len(KINDS)][1],
                status=TaskStatus.PENDING,
                priority=Priority.NORMAL,
                queue=KINDS[i % len(KINDS)][2],
                requested_by=f"user-{i % OWNERS}",
                params={},
                max_retries=3,
                now=now,
            )
        )
        for i in range(count)
    ]
    try:
        async with resources.unit() as uow:
            await uow.session.execute(tasks_table.insert(), rows)
    finally:
        await resources.close()


async def _time(port: int, path: str, headers: dict[str, str], requests: int) -> dict[str, Any]:
    conn = await Connection.open(port)
    raw = Connection.request("GET", path, headers)
    latencies: list[float] = []
    body = b""
    try:
        for i in range(requests + 5):
            start = time.perf_counter()
            status, body = await conn.send(raw)
            if status != 200:
                raise RuntimeError(f"{path} answered {status}: {body[:300]!r}")
            if i >= 5:  # warm-up
                latencies.append(time.perf_counter() - start)
    finally:
        await conn.close()
    answer = json.loads(body)
    return {
        "requests": len(latencies),
        "p50ms": round(percentile(latencies, 50) * 1000, 1),
        "p99ms": round(percentile(latencies, 99) * 1000, 1),
        "maxms": round(max(latencies) * 1000, 1),
        "tasksInAnswer": answer["totals"]["tasks"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--tail", type=int, default=2_000, help="tasks after the watermark")
    parser.add_argument("--requests", type=int, default=60)
    args = parser.parse_args()
    result: dict[str, Any] = {"bench": "analytics", "db": args.db, "tasks": args.tasks}
    with workdir("bench-analytics-") as work, database(args.db, work) as db:
        start = time.perf_counter()
        (fill_postgres if db.kind == "postgres" else fill_sqlite)(db, args.tasks)
        result["fillSeconds"] = round(time.perf_counter() - start, 1)
        log(f"filled {args.tasks} tasks in {result['fillSeconds']} s")
        start = time.perf_counter()
        result["rollup"] = uvloop.run(_roll_up(db.url, work))
        result["rollupSeconds"] = round(time.perf_counter() - start, 1)
        log(f"rollup: {result['rollup']} in {result['rollupSeconds']} s")
        uvloop.run(_tail(db.url, work, args.tail))
        result["liveTail"] = args.tail
        with Server("api", db, work) as server:
            answers = {}
            for who, headers in (
                ("admin", {"X-User-ID": "root", "X-User-Roles": "admin"}),
                (USER, {"X-User-ID": USER}),
            ):
                for days in (7, 30, 90):
                    path = f"/api/v1/operations/analytics?days={days}"
                    answers[f"{who} {days}d"] = uvloop.run(
                        _time(server.port, path, headers, args.requests)
                    )
                    log(f"{who} {days} days: {answers[f'{who} {days}d']}")
            filtered = "/api/v1/operations/analytics?days=90&taskType=import&queue=bulk"
            answers["admin 90d import/bulk"] = uvloop.run(
                _time(server.port, filtered, {"X-User-ID": "root", "X-User-Roles": "admin"}, 50)
            )
            result["server"] = server.command
        result["answers"] = answers
        result["dbInfo"] = db.info
    result["machine"] = machine()
    result["aim"] = {"p99ms90days": 200}
    emit(result)


if __name__ == "__main__":
    main()
