"""A list stream's ids are its resume positions, so the feed sends rows in id order even when
they commit out of order (PostgreSQL: two transactions; SQLite has one writer at a time)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from service.bootstrap import Resources
from service.db.engine import session_scope
from service.db.repositories.changes import Notice
from service.db.repositories.outbox import NewOutboxRow, OutboxRepository
from service.events import changefeed
from service.events.changefeed import ChangeFeed, Subscription

pytestmark = [pytest.mark.postgres_only, pytest.mark.parametrize("dialect", ["postgresql"])]


def _row() -> NewOutboxRow:
    payload = {"requestedBy": "alice", "taskType": "noop"}
    return NewOutboxRow("operations.task.created", uuid4(), payload, datetime.now(UTC))


async def _commit_one(resources: Resources) -> int:
    async with session_scope(resources.sessionmaker) as session:
        [row] = await OutboxRepository(session).add([_row()])
        await session.commit()
    return row.id


async def _handed(sub: Subscription) -> list[int]:
    """What the stream was handed so far (without waiting for more)."""
    if not sub.waiting:
        return []
    return [item.id for item in await sub.take() if isinstance(item, Notice)]


async def test_a_row_committed_before_a_lower_one_waits_for_it(resources: Resources) -> None:
    feed = ChangeFeed(resources.sessionmaker, max_clients=10, poll_seconds=60)
    stream = await feed.subscribe(None)
    async with session_scope(resources.sessionmaker) as slow:
        lower = (await OutboxRepository(slow).add([_row()]))[0].id  # its commit is still to come
        higher = await _commit_one(resources)
        assert higher > lower
        assert await feed.read()  # rows wait: read again soon
        assert await _handed(stream) == []
        await slow.commit()
    assert not await feed.read()
    assert await _handed(stream) == [lower, higher]


async def test_rows_go_out_when_a_lower_id_takes_longer_than_the_hold(
    resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(changefeed, "HOLD_SECONDS", 0.0)
    feed = ChangeFeed(resources.sessionmaker, max_clients=10, poll_seconds=60)
    stream = await feed.subscribe(None)
    async with session_scope(resources.sessionmaker) as slow:
        lower = (await OutboxRepository(slow).add([_row()]))[0].id
        higher = await _commit_one(resources)
        await feed.read()
        assert await _handed(stream) == [higher]  # a long transaction does not hold the others up
        await slow.commit()
    await feed.read()
    assert await _handed(stream) == [lower]  # still sent, late, when it commits
