"""A worker's statements cost what they touch, not what waits: their work must not grow with
the backlog, whatever the planner believes.

Each statement is measured on a small and a large backlog in the planner states that used to
send it through every task:
- never-analysed: a fresh database right after a burst of creates (both planners believe the
  task table is empty);
- analysed-empty: the statistics say "empty" for certain (a queue drained, then a burst);
- analysed-before-claims: the statistics were taken with the backlog pending, before a worker
  claimed it (they say no task is running);
- generic-plan: PostgreSQL plans a prepared statement generically after its fifth run, and a
  generic plan knows no bound value, so a partial index (`WHERE status = 'pending'`) serves it
  only if the status is written into the statement (SQLite: as never-analysed).

Autovacuum is off for the measured tables: its analyses, at moments of its own choosing, would
put a test into a state other than the one it names.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import select, text

from service.clock import utcnow
from service.db.engine import session_scope
from service.db.tables import tasks_table
from service.db.unit_of_work import UnitOfWork
from service.domain.settlement import Ending
from service.domain.tasks import TaskRecord
from service.usecases import execution
from tests.integration.worker.support import make_task, open_resources

CLAIM = 20
STATES = ["never-analysed", "analysed-empty", "analysed-before-claims", "generic-plan"]

#: a statement under test: run inside `uow`, given what the setup left (claimed tasks)
Step = Callable[[UnitOfWork, Any, list[TaskRecord]], Awaitable[None]]


async def add_backlog(resources: Any, count: int) -> None:
    """`count` pending noop tasks, each a copy of one made by the create use case."""
    first = await make_task(resources, "noop")
    async with session_scope(resources.sessionmaker) as session:
        row = (await session.execute(select(tasks_table).where(tasks_table.c.id == first.id))).one()
        base = row._asdict()
        copies = [
            {
                **base,
                "id": uuid4(),
                "available_at": base["available_at"] + timedelta(microseconds=i),
            }
            for i in range(1, count)
        ]
        await session.execute(tasks_table.insert(), copies)


async def claim(uow: UnitOfWork, rooms: dict[str, int]) -> list[TaskRecord]:
    return await execution.claim(
        uow,
        worker_id="w",
        rooms=rooms,
        now=utcnow() + timedelta(seconds=1),
        lease_seconds=60,
        dispatch="poll",
    )


async def work_of(uow: UnitOfWork, step: Callable[[], Awaitable[None]]) -> int:
    """What running `step` inside `uow` cost the database, in its own units: PostgreSQL's heap
    tuples of tasks and attempts read (by scans and index fetches) in this transaction,
    SQLite's virtual machine instructions."""
    session = uow.session
    if session.get_bind().dialect.name == "postgresql":
        reads = text(
            "SELECT coalesce(sum(coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)), 0) "
            "FROM pg_stat_xact_user_tables WHERE relname IN ('tasks', 'task_attempts')"
        )
        before = (await session.execute(reads)).scalar_one()
        await step()
        after = (await session.execute(reads)).scalar_one()
        return int(after - before)
    driver = (await (await session.connection()).get_raw_connection()).driver_connection
    assert driver is not None  # aiosqlite's connection
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 100
        return 0  # go on

    await driver.set_progress_handler(count, 100)
    try:
        await step()
    finally:
        await driver.set_progress_handler(None, 100)
    return steps


async def cost(
    database_url: str, data_dir: Path, backlog: int, state: str, step: Step, *, running: bool
) -> int:
    """The work of `step` over `backlog` tasks (all claimed first when `running`)."""
    async with open_resources(database_url, data_dir) as resources:
        postgres = resources.engine.dialect.name == "postgresql"
        async with session_scope(resources.sessionmaker) as session:
            if postgres:
                for table in ("tasks", "task_attempts"):
                    await session.execute(
                        text(f"ALTER TABLE {table} SET (autovacuum_enabled = off)")
                    )
            await session.execute(tasks_table.delete())
            if state == "analysed-empty":  # the statistics say "empty" for certain
                await session.execute(text("ANALYZE tasks"))
        await add_backlog(resources, backlog)
        if state == "analysed-before-claims":
            async with session_scope(resources.sessionmaker) as session:
                await session.execute(text("ANALYZE tasks"))
        taken: list[TaskRecord] = []
        if running:
            async with resources.unit() as uow:
                taken = await claim(uow, {"default": backlog})
            assert len(taken) == backlog
        async with resources.unit() as uow:
            if state == "generic-plan" and postgres:
                await uow.session.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))
            return await work_of(uow, lambda: step(uow, resources, taken))


async def claim_some(uow: UnitOfWork, _resources: Any, _taken: list[TaskRecord]) -> None:
    claimed = await claim(uow, {"default": CLAIM, "urgent": CLAIM, "bulk": CLAIM})
    assert len(claimed) == CLAIM


async def finish_some(uow: UnitOfWork, resources: Any, taken: list[TaskRecord]) -> None:
    now = utcnow()
    outcomes = [execution.Outcome(t, Ending.COMPLETED, now) for t in taken[:CLAIM]]
    finished = await execution.finish(
        uow,
        worker_id="w",
        outcomes=outcomes,
        now=now,
        policy=resources.retry_policy,
        rng=resources.rng,
    )
    assert len(finished) == CLAIM


async def expire_none(uow: UnitOfWork, resources: Any, _taken: list[TaskRecord]) -> None:
    """Every lease still runs: nothing to hand back, and nothing should be read to know it."""
    moved = await execution.expire_leases(
        uow, now=utcnow(), policy=resources.retry_policy, rng=resources.rng
    )
    assert moved == []


async def promote_none(uow: UnitOfWork, _resources: Any, _taken: list[TaskRecord]) -> None:
    """No task is scheduled: promoting due ones reads nothing."""
    assert await execution.promote_due(uow, now=utcnow()) == []


STEPS: dict[str, tuple[Step, bool]] = {
    "claim": (claim_some, False),
    "finish": (finish_some, True),
    "expire-leases": (expire_none, True),
    "promote-due": (promote_none, False),
}


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("statement", list(STEPS))
async def test_a_worker_statement_reads_what_it_touches_whatever_the_backlog(
    database_url: str, tmp_path: Path, statement: str, state: str
) -> None:
    """Measured before: a claim that went through every pending task (a sequential scan and a
    sort, or the status index under a generic plan); the UPDATE joining the chosen ids by a
    nested loop over every task; a finish that found its 16 tasks through the status index
    (an entry for every version of every task that ran); attempts finished by a hash join over
    every attempt."""
    step, running = STEPS[statement]
    small = await cost(database_url, tmp_path / "s", CLAIM * 2, state, step, running=running)
    large = await cost(database_url, tmp_path / "l", CLAIM * 100, state, step, running=running)

    # A statement that went through the backlog does ~50x the work on the large one (a nested
    # loop over pending tasks x chosen ids did ~2,000x); one that reads only what it touches
    # does about the same on both.
    assert large < 2 * small + 200, (small, large)
