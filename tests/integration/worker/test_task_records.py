"""Rows of the tasks table become the same entities whichever way they are read."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from service.db.engine import session_scope
from service.db.repositories.tasks import to_record, to_records
from service.db.tables import tasks_table as T
from service.domain.tasks import Priority, TaskStatus
from tests.integration.worker.support import make_task, open_resources


async def test_a_result_read_by_position_gives_the_records_read_by_name(
    database_url: str, tmp_path: Path
) -> None:
    """`to_records` (a claim's and a finish's rows) finds each column by its name once per
    result: in any column order it makes the records `to_record` makes row by row."""
    async with open_resources(database_url, tmp_path) as resources:
        made = [
            await make_task(resources, "noop", priority=Priority.HIGH, tags=["a", "b"]),
            await make_task(resources, "noop", name="second"),
        ]
        reversed_columns = select(*reversed(list(T.c))).order_by(T.c.created_at)
        async with session_scope(resources.sessionmaker) as session:
            by_name = [to_record(r) for r in (await session.execute(select(T))).all()]
            by_position = to_records(await session.execute(select(T)))
            reversed_order = to_records(await session.execute(reversed_columns))

    assert by_position == by_name
    assert sorted(reversed_order, key=lambda t: t.name or "") == sorted(
        by_name, key=lambda t: t.name or ""
    )
    assert {t.id for t in by_position} == {t.id for t in made}
    first = next(t for t in by_position if t.id == made[0].id)
    assert first == made[0]  # what was stored is what comes back
    assert first.status is TaskStatus.PENDING
    assert first.priority is Priority.HIGH
    assert type(first.id) is type(made[0].id)
