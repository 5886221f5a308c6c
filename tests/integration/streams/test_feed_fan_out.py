"""One read of the change feed, handed to many streams: each gets exactly what its filter (or
its task) selects, streams with the same filters share one test, and the event loop keeps
turning while they are woken (a request waiting on it is not held for the whole round)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest

from service.bootstrap import Resources
from service.db.engine import session_scope
from service.db.repositories.changes import Notice
from service.db.repositories.outbox import NewOutboxRow, OutboxRepository
from service.db.repositories.tasks import TaskFilters
from service.domain.tasks import TaskStatus
from service.events import changefeed
from service.events.changefeed import ChangeFeed, Subscription
from service.usecases.streams import matcher

STREAMS_PER_OWNER = 3 * changefeed.FAN_OUT


async def _write(resources: Resources, rows: list[tuple[str, UUID, str]]) -> None:
    """Outbox rows (topic, task, owner) as the service writes them for its changes."""
    now = datetime.now(UTC)
    new = [
        NewOutboxRow(topic, task_id, {"requestedBy": owner, "taskType": "noop"}, now)
        for topic, task_id, owner in rows
    ]
    async with session_scope(resources.sessionmaker) as session:
        await OutboxRepository(session).add(new)
        await session.commit()


async def _taken(sub: Subscription) -> list[tuple[str, UUID]]:
    return [(n.topic, n.task_id) for n in await sub.take() if isinstance(n, Notice)]


async def _read_watching(feed: ChangeFeed, streams: list[Subscription]) -> list[int]:
    """One read of the feed; how many of `streams` had been handed their items at each turn of
    the event loop while it went on."""
    handed_at_each_turn: list[int] = []

    async def watch() -> None:
        while True:  # until the read is over
            handed_at_each_turn.append(sum(1 for s in streams if s.waiting))
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0)
    await feed.read()
    watcher.cancel()
    return handed_at_each_turn


async def test_each_stream_gets_what_it_follows_and_the_loop_turns_meanwhile(
    resources: Resources,
) -> None:
    feed = ChangeFeed(resources.sessionmaker, max_clients=1000, poll_seconds=60)
    alice_task, bob_task = uuid4(), uuid4()
    alices = [
        await feed.subscribe(None, matcher(TaskFilters(owner="alice")))
        for _ in range(STREAMS_PER_OWNER)
    ]
    bobs = [
        await feed.subscribe(None, matcher(TaskFilters(owner="bob")))
        for _ in range(STREAMS_PER_OWNER)
    ]
    followers = [await feed.subscribe(bob_task) for _ in range(2)]
    everyone = [*alices, *bobs, *followers]
    await _write(
        resources,
        [
            ("operations.task.created", alice_task, "alice"),
            ("operations.task.created", bob_task, "bob"),
            ("operations.task.started", bob_task, "bob"),
        ],
    )

    handed_at_each_turn = await _read_watching(feed, everyone)

    assert [await _taken(s) for s in alices] == [[("operations.task.created", alice_task)]] * len(
        alices
    )
    bob_events = [("operations.task.created", bob_task), ("operations.task.started", bob_task)]
    assert [await _taken(s) for s in [*bobs, *followers]] == [bob_events] * (
        len(bobs) + len(followers)
    )
    # other work ran while the streams were being handed their items, not only before or after
    assert any(0 < n < len(everyone) for n in handed_at_each_turn), handed_at_each_turn


def test_streams_with_the_same_filters_share_one_test() -> None:
    pending = [TaskStatus.PENDING]
    same = matcher(TaskFilters(owner="alice", status=pending, tags=["eu"]))
    assert matcher(TaskFilters(owner="alice", status=tuple(pending), tags=("eu",))) is same
    assert matcher(TaskFilters(owner="bob", status=pending, tags=["eu"])) is not same
    assert matcher(TaskFilters(owner="alice", status=pending)) is not same


async def test_a_read_reaches_many_streams_within_a_bounded_number_of_pauses(
    resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More dashboards cost no more pauses (so no more delay for the last of them) than a
    few: the groups grow instead."""
    monkeypatch.setattr(changefeed, "FAN_OUT_PAUSE", 0)
    monkeypatch.setattr(changefeed, "FAN_OUT_PAUSES", 5)  # 200 streams stand for 2,000
    feed = ChangeFeed(resources.sessionmaker, max_clients=5000, poll_seconds=60)
    streams = [
        await feed.subscribe(None, matcher(TaskFilters(owner="alice")))
        for _ in range(40 * changefeed.FAN_OUT_PAUSES)
    ]
    await _write(resources, [("operations.task.created", uuid4(), "alice")])

    handed_at_each_turn = await _read_watching(feed, streams)

    assert all(s.waiting == 1 for s in streams)
    partly = {n for n in handed_at_each_turn if 0 < n < len(streams)}
    assert 0 < len(partly) < changefeed.FAN_OUT_PAUSES


async def _feed_with_one_change(
    resources: Resources, streams: int, requests_first: Callable[[], bool]
) -> tuple[ChangeFeed, list[Subscription]]:
    feed = ChangeFeed(
        resources.sessionmaker, max_clients=1000, poll_seconds=60, requests_first=requests_first
    )
    subs = [await feed.subscribe(None, matcher(TaskFilters(owner="alice"))) for _ in range(streams)]
    await _write(resources, [("operations.task.created", uuid4(), "alice")])
    return feed, subs


async def test_requests_being_answered_go_before_the_streams(
    resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(changefeed, "YIELD_SECONDS", 30.0)
    answering = True
    feed, streams = await _feed_with_one_change(resources, 20, lambda: answering)

    read = asyncio.create_task(feed.read())
    for _ in range(20):  # the read is made, then waits: a request is being answered
        await asyncio.sleep(0.002)
    assert not read.done()
    assert not any(s.waiting for s in streams)

    answering = False
    await asyncio.wait_for(read, 10)
    assert all(s.waiting == 1 for s in streams)


async def test_requests_that_never_end_hold_the_streams_back_a_bounded_time(
    resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(changefeed, "YIELD_SECONDS", 0.05)
    feed, streams = await _feed_with_one_change(resources, 20, lambda: True)

    await asyncio.wait_for(feed.read(), 10)  # a budget per read, not per group: it ends
    assert all(s.waiting == 1 for s in streams)
