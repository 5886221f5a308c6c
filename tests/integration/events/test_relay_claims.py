"""A group of creates' first events are claimed by the process that wrote them: its relay
publishes them from memory and settles them in one round trip, without the relay lock; other
relays leave a claimed row, and the later rows of its task, alone until it is settled, or
publish them once the claim ran out (the writer died)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import select

from service.bootstrap import Resources
from service.clock import utcnow
from service.db.repositories import outbox as outbox_rows
from service.db.repositories.outbox import NewOutboxRow, OutboxRecord
from service.db.tables import outbox_table as O
from service.db.unit_of_work import Facts, statement_unit
from service.domain.callers import Caller
from service.domain.tasks import TaskRecord
from service.events.base import OutgoingEvent, PublishError
from service.events.relay import OutboxRelay
from service.usecases import tasks as task_usecases
from service.usecases.group_commit import GroupCommit
from tests.integration.api.support import failing_creates
from tests.integration.events.support import add
from tests.integration.events.test_relay_fresh import lock_held_elsewhere

pytestmark = [pytest.mark.postgres_only, pytest.mark.parametrize("dialect", ["postgresql"])]


class Broker:
    """Accepts every event but those of the tasks in `refuse`, recording (task, topic)."""

    kind = "test"
    max_in_flight = 4
    crosses_processes = False

    def __init__(self) -> None:
        self.refuse: set[str] = set()
        self.accepted: list[tuple[str | None, str]] = []

    async def publish(self, event: OutgoingEvent) -> None:
        if event.subject in self.refuse:
            raise PublishError("refused")
        self.accepted.append((event.subject, event.topic))

    async def healthy(self) -> bool:
        return True

    async def close(self) -> None:
        return None


def relay_of(resources: Resources, broker: Broker) -> OutboxRelay:
    return OutboxRelay(resources.sessionmaker, broker, engine=resources.engine)


async def past_first_sweep(relay: OutboxRelay) -> OutboxRelay:
    """A relay's first drain sweeps the table: past it, handed rows go out from memory."""
    await relay.drain()
    return relay


def writer_for(resources: Resources, relay: OutboxRelay) -> GroupCommit:
    """A group commit as the composition root builds it on PostgreSQL, feeding `relay`."""

    def hand_over(facts: Facts) -> None:
        relay.accept(facts.outbox)

    units = functools.partial(statement_unit, resources.engine, hand_over)
    return GroupCommit(resources.unit, statement_units=units, settlements=relay)


async def create(
    resources: Resources,
    count: int,
    *,
    now: datetime | None = None,
    to: OutboxRelay | None = None,
    write: bool = True,
) -> tuple[list[TaskRecord], list[OutboxRecord]]:
    """`count` tasks written as the group commit writes them (one statement on the driver),
    their rows handed to `to` after the commit (to no relay: a process that died); with
    `write` False only made, not written."""
    now = now or utcnow()
    caller = Caller("alice")
    new = task_usecases.NewTask(task_type="noop")
    tasks = [
        task_usecases.prepare(caller, new, catalog=resources.catalog, now=now) for _ in range(count)
    ]
    if not write:
        return tasks, []
    facts: list[Facts] = []
    async with statement_unit(resources.engine, facts.append) as unit:
        await task_usecases.store_alone(unit, tasks, now=now)
    rows = facts[0].outbox
    if to is not None:
        to.accept(rows)
    return tasks, rows


async def later_row(resources: Resources, task: TaskRecord) -> OutboxRecord:
    """A later event of `task`, committed by another process (not claimed)."""
    row = NewOutboxRow("operations.task.started", task.id, {"id": str(task.id)}, utcnow())
    [record] = await add(resources, row)
    return record


async def stored(resources: Resources, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    async with resources.engine.connect() as connection:
        query = select(O.c.id, O.c.published_at, O.c.claimed_until).where(O.c.id.in_(ids))
        return {r.id: dict(r._mapping) for r in await connection.execute(query)}


async def assert_settled(resources: Resources, rows: Sequence[OutboxRecord]) -> None:
    """Every row marked published, its claim gone."""
    settled = await stored(resources, [r.id for r in rows])
    assert all(s["published_at"] is not None for s in settled.values())
    assert all(s["claimed_until"] is None for s in settled.values())


def of(broker: Broker, task: TaskRecord) -> list[str]:
    return [topic for subject, topic in broker.accepted if subject == str(task.id)]


CREATED = "operations.task.created"
STARTED = "operations.task.started"


class TestClaimedRows:
    async def test_a_group_is_written_claimed_and_its_relay_publishes_and_settles_it(
        self, resources: Resources
    ) -> None:
        broker = Broker()
        relay = await past_first_sweep(relay_of(resources, broker))
        now = utcnow()
        tasks, rows = await create(resources, 3, now=now, to=relay)
        claims = await stored(resources, [r.id for r in rows])
        for row in rows:
            assert claims[row.id]["published_at"] is None
            until = claims[row.id]["claimed_until"]
            assert until == now + timedelta(seconds=outbox_rows.CLAIM_SECONDS)

        assert await relay.drain() == 3
        assert sorted(broker.accepted) == sorted((str(t.id), CREATED) for t in tasks)
        await assert_settled(resources, rows)
        await relay.drain()  # a sweep now and then: nothing goes out twice
        assert len(broker.accepted) == 3

    async def test_claimed_rows_go_out_while_another_relay_holds_the_relay_lock(
        self, resources: Resources
    ) -> None:
        """No lock, no wait: the rows are this relay's alone."""
        broker = Broker()
        relay = await past_first_sweep(relay_of(resources, broker))
        async with lock_held_elsewhere(resources):
            tasks, _ = await create(resources, 2, to=relay)
            assert await relay.drain() == 2
        assert sorted(broker.accepted) == sorted((str(t.id), CREATED) for t in tasks)

    async def test_another_relay_leaves_a_claimed_row_and_the_rows_of_its_task_behind_it(
        self, resources: Resources
    ) -> None:
        writer_broker, other_broker = Broker(), Broker()
        writer = await past_first_sweep(relay_of(resources, writer_broker))
        other = relay_of(resources, other_broker)
        [claimed_task], _ = await create(resources, 1, to=writer)
        started = await later_row(resources, claimed_task)
        [free_task], free_rows = await create(resources, 1, now=utcnow() - timedelta(minutes=1))

        assert await other.drain() == 1  # its first drain: a table drain
        assert other_broker.accepted == [(str(free_task.id), CREATED)]  # its claim ran out
        assert of(other_broker, claimed_task) == []  # neither the claimed row nor the later one
        assert other._next_wait() == 0.05  # it looks again shortly

        await writer.drain()
        assert of(writer_broker, claimed_task) == [CREATED]
        await other.drain()
        assert of(other_broker, claimed_task) == [STARTED]  # behind the created event
        assert (await stored(resources, [started.id]))[started.id]["published_at"] is not None
        assert (await stored(resources, [free_rows[0].id]))[free_rows[0].id]["published_at"]

    async def test_a_sweep_that_meets_only_claimed_rows_does_not_look_again_soon(
        self, resources: Resources
    ) -> None:
        """Under load another process's group is always in flight: its claimed rows are its own
        to publish, and a sweep that saw them must not turn into a drain every 50 ms."""
        broker = Broker()
        other = relay_of(resources, broker)
        await create(resources, 3)  # claimed by a live writer, nothing behind them
        assert await other.drain() == 0
        assert other._next_wait() == other.sweep_seconds

    async def test_the_rows_of_a_writer_that_died_go_out_in_order_once_its_claims_run_out(
        self, resources: Resources
    ) -> None:
        broker = Broker()
        other = relay_of(resources, broker)
        claim = timedelta(seconds=outbox_rows.CLAIM_SECONDS)
        [task], [created] = await create(resources, 1, now=utcnow() - claim - timedelta(seconds=1))
        await later_row(resources, task)
        assert await other.drain() == 2
        assert of(broker, task) == [CREATED, STARTED]
        assert (await stored(resources, [created.id]))[created.id]["published_at"] is not None

    async def test_a_table_drain_reaches_rows_past_a_full_batch_of_claimed_rows(
        self, resources: Resources
    ) -> None:
        """Held rows do not stop a drain: it reads on past them, batch after batch."""
        broker = Broker()
        other = OutboxRelay(resources.sessionmaker, broker, engine=resources.engine, batch_size=2)
        await create(resources, 4)  # claimed by a live writer (handed to no relay here)
        [task], _ = await create(resources, 1, now=utcnow() - timedelta(minutes=1))
        assert await other.drain() == 1
        assert broker.accepted == [(str(task.id), CREATED)]

    async def test_refused_rows_are_released_to_the_table_drain_and_go_out_in_order(
        self, resources: Resources
    ) -> None:
        broker = Broker()
        relay = await past_first_sweep(relay_of(resources, broker))
        tasks, rows = await create(resources, 2, to=relay)
        refused = tasks[0]
        broker.refuse.add(str(refused.id))
        assert await relay.drain() == 1
        assert of(broker, tasks[1]) == [CREATED]
        row = (await stored(resources, [rows[0].id]))[rows[0].id]
        assert row["published_at"] is None
        assert row["claimed_until"] is None  # released: the table drain's now
        await later_row(resources, refused)

        broker.refuse.clear()
        assert await relay.drain() == 2  # after a refusal: the table, with its order
        assert of(broker, refused) == [CREATED, STARTED]

    async def test_claims_not_settled_for_an_outage_are_settled_by_the_next_drain(
        self, resources: Resources, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        broker = Broker()
        relay = await past_first_sweep(relay_of(resources, broker))
        _, rows = await create(resources, 2, to=relay)
        settle = outbox_rows.settle_claims

        async def away(*_: Any) -> None:
            raise ConnectionRefusedError("the database is away")

        monkeypatch.setattr(outbox_rows, "settle_claims", away)
        with pytest.raises(ConnectionRefusedError):
            await relay.drain()
        assert len(broker.accepted) == 2
        assert all(
            r["claimed_until"] for r in (await stored(resources, [r.id for r in rows])).values()
        )

        monkeypatch.setattr(outbox_rows, "settle_claims", settle)
        assert await relay.drain() == 0  # nothing goes out again; the claims are settled
        await assert_settled(resources, rows)
        assert len(broker.accepted) == 2

    async def test_while_creates_keep_coming_the_next_groups_statement_settles_them(
        self, resources: Resources
    ) -> None:
        """No round trip of their own: the relay leaves the rows it published to the statement
        of the group about to be written, which marks them published as it commits."""
        broker = Broker()
        relay = await past_first_sweep(relay_of(resources, broker))
        relay.writer_coming = lambda: True  # creates are queued
        creates = writer_for(resources, relay)
        tasks, rows = await create(resources, 2, to=relay)
        assert await relay.drain() == 2
        assert sorted(broker.accepted) == sorted((str(t.id), CREATED) for t in tasks)
        waiting = await stored(resources, [r.id for r in rows])
        assert all(w["published_at"] is None for w in waiting.values())  # not settled yet

        [task], _ = await create(resources, 1, write=False)
        await creates.store(task, now=task.created_at)  # the next group
        await assert_settled(resources, rows)
        assert relay.take_settled() == []

    async def test_rows_behind_claimed_ones_in_the_same_drain_are_not_kept_waiting(
        self, resources: Resources
    ) -> None:
        """A task created and started in this process (API and worker in one): its created row
        is settled at once, not left to the next group, and its started row follows it in the
        same drain."""
        broker = Broker()
        relay = await past_first_sweep(relay_of(resources, broker))
        relay.writer_coming = lambda: True  # creates are queued
        [task], [created] = await create(resources, 1, to=relay)
        relay.accept([await later_row(resources, task)])
        assert await relay.drain() == 2
        assert of(broker, task) == [CREATED, STARTED]
        await assert_settled(resources, [created])
        assert relay.take_settled() == []

    async def test_the_relay_waits_for_the_group_being_written_before_it_settles_alone(
        self, resources: Resources
    ) -> None:
        """Nothing queued when the rows went out, but a group being written: creates queue
        while it commits, and the group after it settles the rows."""
        broker = Broker()
        relay = await past_first_sweep(relay_of(resources, broker))
        queued: list[bool] = []

        async def group_commits(timeout: float) -> None:
            queued.append(True)  # the next creates arrived meanwhile

        relay.company = group_commits
        relay.writer_coming = lambda: bool(queued)
        _, rows = await create(resources, 2, to=relay)
        await relay.drain()
        assert queued  # it waited for the group
        assert relay.take_settled() == [r.id for r in rows]  # and left them to the next one
        waiting = await stored(resources, [r.id for r in rows])
        assert all(w["published_at"] is None for w in waiting.values())

    async def test_rows_a_failed_group_was_to_settle_are_settled_by_the_relay(
        self, resources: Resources
    ) -> None:
        broker = Broker()
        relay = await past_first_sweep(relay_of(resources, broker))
        relay.writer_coming = lambda: True
        creates = writer_for(resources, relay)
        _, rows = await create(resources, 2, to=relay)
        await relay.drain()
        [task], _ = await create(resources, 1, write=False)
        async with failing_creates(resources):
            with pytest.raises(asyncpg.ConnectionFailureError):  # the outage, as the driver says
                await creates.store(task, now=task.created_at)
        relay.writer_coming = lambda: False  # no more creates
        await relay.drain()  # handed back: settled alone
        await assert_settled(resources, rows)
        assert len(broker.accepted) == 2

    async def test_a_relay_that_stops_publishes_the_claimed_rows_it_was_handed(
        self, resources: Resources
    ) -> None:
        broker = Broker()
        relay = relay_of(resources, broker)
        running = asyncio.create_task(relay.run())
        await asyncio.sleep(0.2)  # past its first sweep, waiting for a kick
        tasks, _ = await create(resources, 2, to=relay)
        await relay.stop(running)  # before its loop took them
        assert sorted(broker.accepted) == sorted((str(t.id), CREATED) for t in tasks)
