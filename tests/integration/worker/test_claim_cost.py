"""A claim costs what it takes, not what waits: its work must not grow with the backlog.

Both databases are asked right after a burst of creates, while their planners still believe
the task table is empty (a fresh database, never analysed): the state in which both used to
scan every pending task on every claim.
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
from service.usecases import execution
from tests.integration.worker.support import make_task, open_resources

CLAIM = 20


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


async def work_of(uow: UnitOfWork, claim: Callable[[], Awaitable[list[Any]]]) -> int:
    """What running `claim` inside `uow` cost the database, in its own units: PostgreSQL's
    heap tuples read (by scans and index fetches) in this transaction, SQLite's virtual
    machine instructions."""
    session = uow.session
    if session.get_bind().dialect.name == "postgresql":
        reads = text(
            "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) "
            "FROM pg_stat_xact_user_tables WHERE relname = 'tasks'"
        )
        before = (await session.execute(reads)).scalar_one()
        claimed = await claim()
        after = (await session.execute(reads)).scalar_one()
        assert len(claimed) == CLAIM
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
        claimed = await claim()
    finally:
        await driver.set_progress_handler(None, 100)
    assert len(claimed) == CLAIM
    return steps


async def claim_cost(
    database_url: str, data_dir: Path, backlog: int, *, analysed_empty: bool = False
) -> int:
    async with open_resources(database_url, data_dir) as resources:
        if analysed_empty:  # the statistics say "empty" for certain, not "never looked"
            async with session_scope(resources.sessionmaker) as session:
                await session.execute(text("ANALYZE tasks"))
        await add_backlog(resources, backlog)
        async with resources.unit() as uow:
            return await work_of(
                uow,
                lambda: execution.claim(
                    uow,
                    worker_id="w",
                    rooms={"default": CLAIM, "urgent": CLAIM, "bulk": CLAIM},
                    now=utcnow() + timedelta(seconds=1),
                    lease_seconds=60,
                    dispatch="poll",
                ),
            )


@pytest.mark.parametrize("analysed_empty", [False, True], ids=["never-analysed", "analysed-empty"])
async def test_a_claim_reads_what_it_takes_whatever_the_backlog(
    database_url: str, tmp_path: Path, analysed_empty: bool
) -> None:
    """Also when the table was last analysed while it was empty (a queue drained, then a
    burst): the planner then believed a few hundred rows and chose a sequential scan of the
    tasks for the candidates and, joining the chosen ids, a nested loop over every task."""
    small = await claim_cost(
        database_url, tmp_path / "small", backlog=CLAIM * 2, analysed_empty=analysed_empty
    )
    async with (
        open_resources(database_url, tmp_path) as resources,
        session_scope(resources.sessionmaker) as session,
    ):
        await session.execute(tasks_table.delete())
    large = await claim_cost(
        database_url, tmp_path / "large", backlog=CLAIM * 100, analysed_empty=analysed_empty
    )

    # A claim that went through every pending task does ~100x the work on the large backlog
    # (a nested loop over pending tasks x chosen ids did ~2,000x); one that reads only what it
    # takes does about the same on both.
    assert large < 2 * small + 200, (small, large)
