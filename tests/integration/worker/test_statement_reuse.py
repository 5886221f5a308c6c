"""Statements about a list of rows keep one SQL text whatever the list's length.

A busy worker renews leases, finishes runs and marks outbox rows in batches of every size.
On PostgreSQL each new SQL text is prepared by the driver (a round trip, a parse and a plan),
so a text per length meant a prepare on nearly every call; one array parameter keeps one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

from sqlalchemy import event, select

from service.clock import utcnow
from service.db.engine import session_scope
from service.db.repositories.history import HistoryRepository
from service.db.repositories.outbox import NewOutboxRow, OutboxRepository
from service.db.repositories.tasks import TaskRepository
from service.db.tables import attempts_table as A, events_table as E, outbox_table
from service.usecases import execution
from tests.integration.worker.support import make_task, open_resources


@contextmanager
def statements(resources: Any, *, many: list[str] | None = None) -> Iterator[list[str]]:
    """The SQL texts sent while the block runs (and in `many`, those sent as executemany: one
    statement per row in the server)."""
    seen: list[str] = []

    def note(
        _conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any, executemany: bool
    ) -> None:
        seen.append(statement)
        if executemany and many is not None:
            many.append(statement)

    engine = resources.engine.sync_engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


async def test_batches_of_any_size_run_one_text(database_url: str, tmp_path: Path) -> None:
    async with open_resources(database_url, tmp_path) as resources:
        made = [await make_task(resources, "noop") for _ in range(11)]
        async with resources.unit() as uow:
            claimed = await execution.claim(
                uow,
                worker_id="w",
                rooms={"default": 11},
                now=utcnow() + timedelta(seconds=1),
                lease_seconds=60,
                dispatch="poll",
            )
        assert {t.id for t in claimed} == {t.id for t in made}
        ids = [t.id for t in claimed]
        until = utcnow() + timedelta(minutes=5)
        held: list[int] = []
        with statements(resources) as renewals:
            for size in (1, 3, 7):
                async with session_scope(resources.sessionmaker) as session:
                    rows = await TaskRepository(session).extend_leases(ids[:size], "w", until)
                held.append(len(rows))
            async with session_scope(resources.sessionmaker) as session:
                others = await TaskRepository(session).extend_leases(ids[:5], "other", until)

        async with session_scope(resources.sessionmaker) as session:
            outbox = await session.execute(select(outbox_table.c.id).order_by(outbox_table.c.id))
            row_ids = [int(i) for i in outbox.scalars()]
            with statements(resources) as marks:
                for size in (2, 4, 9):
                    await OutboxRepository(session).mark_published(row_ids[:size], utcnow())
            waiting = await OutboxRepository(session).pending_count()

    # each list matched exactly its rows, and only this worker's
    assert held == [1, 3, 7]
    assert others == []
    assert waiting == len(row_ids) - 9
    if resources.engine.dialect.name == "postgresql":
        assert len(set(renewals)) == 1, renewals
        assert len(set(marks)) == 1, marks


#: payload contents a fast JSON writer may refuse or change: each must be stored as it is
_UNUSUAL: list[dict[str, Any]] = [
    {},
    {"big": 2**70, "negative": -(2**65)},
    {"text": 'é ✓ \u2028 "quoted" \\ \n', "nested": {"list": [1.5, None, True, "x"]}},
    {"float": 1e16, "tiny": 5e-324},
]


async def test_outbox_rows_of_any_batch_size_get_their_own_ids(
    database_url: str, tmp_path: Path
) -> None:
    now = utcnow()
    async with open_resources(database_url, tmp_path) as resources:
        with statements(resources) as adds:
            added = []
            for size in (2, 5, 3):
                rows = [
                    NewOutboxRow(
                        topic=f"topic-{size}-{i}",
                        task_id=uuid4(),
                        payload={"n": i, "size": size, **_UNUSUAL[i % len(_UNUSUAL)]},
                        created_at=now,
                        subject=None if i % 2 else f"subject-{i}",
                    )
                    for i in range(size)
                ]
                async with session_scope(resources.sessionmaker) as session:
                    added += await OutboxRepository(session).add(rows)
        async with session_scope(resources.sessionmaker) as session:
            stored = {r.id: r for r in (await session.execute(select(outbox_table))).all()}

    # every record carries the id its row was stored under, in the order the rows were given
    assert len(stored) == len(added) == 10
    for record in added:
        row = stored[record.id]
        assert (row.topic, row.task_id, row.subject, row.payload) == (
            record.topic,
            record.task_id,
            record.subject,
            record.payload,
        )
        assert (row.published_at, row.attempts) == (None, 0)
    assert [r.id for r in added] == sorted(r.id for r in added)
    if resources.engine.dialect.name == "postgresql":
        assert len(set(adds)) == 1, adds


async def test_events_and_attempts_of_any_batch_size_go_in_as_given(
    database_url: str, tmp_path: Path
) -> None:
    """Events keep their order (a task's history is read back by id) and every column of each
    row, attempts likewise; on PostgreSQL a batch is one statement (an executemany runs one per
    row in the server), of one text whatever the batch's size."""
    now = utcnow()
    task_ids = [uuid4() for _ in range(4)]
    events: list[dict[str, Any]] = []
    attempts: list[dict[str, Any]] = []
    per_row: list[str] = []
    async with open_resources(database_url, tmp_path) as resources:
        with statements(resources, many=per_row) as sent:
            for size in (1, 4, 2):
                batch = [
                    {
                        "task_id": task_ids[(len(events) + i) % 4],
                        "event_type": f"type-{len(events) + i}",
                        "from_status": None if i % 2 else "pending",
                        "to_status": "processing",
                        "actor": None if i == 1 else f"actor-{i}",
                        "message": None if i == 2 else f"message {len(events) + i}",
                        "created_at": now + timedelta(microseconds=len(events) + i),
                    }
                    for i in range(size)
                ]
                tries = [
                    {
                        "task_id": uuid4(),
                        "attempt": i + 1,
                        "worker_id": f"worker-{size}",
                        "dispatch": "push" if i % 2 else "poll",
                        "outcome": "running",
                        "started_at": now,
                    }
                    for i in range(size)
                ]
                async with session_scope(resources.sessionmaker) as session:
                    history = HistoryRepository(session)
                    await history.add_events(batch)
                    await history.start_attempts(tries)
                events += batch
                attempts += tries
        async with session_scope(resources.sessionmaker) as session:
            stored_events = (await session.execute(select(E).order_by(E.c.id))).all()
            stored_attempts = (await session.execute(select(A).order_by(A.c.id))).all()

    columns = list(events[0])
    assert [{c: getattr(r, c) for c in columns} for r in stored_events] == events
    columns = list(attempts[0])
    assert [{c: getattr(r, c) for c in columns} for r in stored_attempts] == attempts
    if resources.engine.dialect.name == "postgresql":
        inserts = [s for s in sent if s.lstrip().upper().startswith("INSERT")]
        assert len(inserts) == 6, inserts  # a statement per batch, not a row at a time
        assert len(set(inserts)) == 2, inserts
        assert per_row == []
