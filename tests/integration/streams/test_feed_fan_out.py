"""One read of the change feed, handed to many streams: each gets exactly what its filter (or
its task) selects, streams with the same filters share one test, and the event loop keeps
turning while they are woken (a request waiting on it is not held for the whole round)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from uuid import UUID, uuid4

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

    handed_at_each_turn: list[int] = []

    async def watch() -> None:
        while True:  # until the read is over
            handed_at_each_turn.append(sum(1 for s in everyone if s.waiting))
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0)
    await feed.read()
    watcher.cancel()

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
