"""A stream's subscription hands over everything queued at once, and ends after it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from service.db.repositories.changes import Notice
from service.events import changefeed
from service.events.changefeed import Subscription


def _notice(i: int) -> Notice:
    return Notice(i, "operations.task.created", uuid4(), {}, datetime.now(UTC))


async def test_what_one_read_routed_is_taken_in_one_batch() -> None:
    sub = Subscription(None, None)
    waiting = asyncio.create_task(sub.take())
    await asyncio.sleep(0)
    sub.put_all([_notice(i) for i in (1, 2, 3)])  # one read of the feed routes these at once
    assert [n.id for n in await waiting if n] == [1, 2, 3]
    sub.put_all([_notice(4)])
    assert [n.id for n in await sub.take() if n] == [4]


async def test_the_end_comes_after_what_was_queued_before_it() -> None:
    sub = Subscription(None, None)
    sub.put_all([_notice(1)])
    sub.end()
    sub.put_all([_notice(2)])  # after the end: not delivered
    assert [n.id if n else None for n in await sub.take()] == [1, None]


async def test_a_client_too_far_behind_is_ended_not_left_waiting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(changefeed, "QUEUE_SIZE", 3)
    sub = Subscription(None, None)
    for i in range(5):
        sub.put_all([_notice(i)])
    items = await sub.take()
    assert [n.id for n in items if n] == [0, 1, 2]  # what it had room for, then its end
    assert items[-1] is None
