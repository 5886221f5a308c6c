"""Rows a process just committed go out from memory (no read back), marked in the relay's short
transaction: on PostgreSQL on the driver, the lock, the order check and the marks in one
statement; on SQLite through the session. Both keep every guarantee of the table drain."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from service.bootstrap import Resources
from service.db.repositories.outbox import OutboxRepository
from service.events import relay as relay_module
from service.events.relay import RELAY_LOCK, OutboxRelay
from tests.integration.events.support import Refusing, add, row


async def relay_of(resources: Resources, broker: Refusing) -> OutboxRelay:
    """A relay as the composition root builds it (on PostgreSQL it marks on the driver), past
    its first drain: a relay's first drain sweeps the table, whatever it was handed."""
    postgres = resources.engine.dialect.name == "postgresql"
    relay = OutboxRelay(
        resources.sessionmaker, broker, engine=resources.engine if postgres else None
    )
    assert await relay.drain() == 0
    return relay


@contextlib.asynccontextmanager
async def lock_held_elsewhere(resources: Resources) -> AsyncIterator[AsyncConnection]:
    """The relay lock, held by another connection (another process's drain) until it ends."""
    async with resources.engine.connect() as other:
        await other.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": RELAY_LOCK})
        yield other


async def waiting(resources: Resources) -> int:
    async with resources.unit() as uow:
        return await OutboxRepository(uow.session).pending_count()


class TestFreshRows:
    async def test_rows_from_memory_go_out_once_and_are_marked(self, resources: Resources) -> None:
        broker = Refusing()
        relay = await relay_of(resources, broker)
        rows = await add(resources, row("payment", 1), row("shipping", 1), row("payment", 2))
        relay.accept(rows)
        assert await relay.drain() == 3
        assert sorted(broker.accepted) == [("payment", 1), ("payment", 2), ("shipping", 1)]
        assert broker.accepted.index(("payment", 1)) < broker.accepted.index(("payment", 2))
        assert await waiting(resources) == 0
        relay.accept(rows)  # handed over again (a repeated kick): nothing goes out twice
        await relay.drain()
        assert len(broker.accepted) == 3

    async def test_a_row_waits_for_an_older_row_of_its_key_left_in_the_table(
        self, resources: Resources
    ) -> None:
        """The older row was committed by another process (not handed to this relay): the later
        one may not overtake it, so both go out by the table, in order."""
        broker = Refusing()
        relay = await relay_of(resources, broker)
        await add(resources, row("payment", 1))
        [later] = await add(resources, row("payment", 2))
        [other] = await add(resources, row("shipping", 1))
        relay.accept([later, other])
        await relay.drain()
        assert [a for a in broker.accepted if a[0] == "payment"] == [("payment", 1), ("payment", 2)]
        assert ("shipping", 1) in broker.accepted
        assert await waiting(resources) == 0

    async def test_older_rows_handed_over_together_go_out_first(self, resources: Resources) -> None:
        broker = Refusing()
        relay = await relay_of(resources, broker)
        rows = await add(resources, row("payment", 1), row("payment", 2), row("payment", 3))
        relay.accept(rows[1:])
        relay.accept(rows[:1])
        await relay.drain()
        assert broker.accepted == [("payment", 1), ("payment", 2), ("payment", 3)]

    async def test_a_refused_row_waits_again_and_goes_out_later_in_order(
        self, resources: Resources
    ) -> None:
        broker = Refusing(refuse={("payment", 1)})
        relay = await relay_of(resources, broker)
        rows = await add(resources, row("payment", 1), row("payment", 2), row("shipping", 1))
        relay.accept(rows)
        await relay.drain()
        assert ("payment", 2) not in broker.accepted  # it would overtake the refused one
        assert await waiting(resources) >= 2
        broker.refuse.clear()
        await relay.drain()  # after a failure: the table, in order
        payment = [a for a in broker.accepted if a[0] == "payment"]
        assert payment == [("payment", 1), ("payment", 2)]
        assert await waiting(resources) == 0


@pytest.mark.postgres_only
@pytest.mark.parametrize("dialect", ["postgresql"])
class TestRelayLock:
    async def test_a_drain_queues_for_the_lock_another_drain_holds(
        self, resources: Resources
    ) -> None:
        broker = Refusing()
        relay = await relay_of(resources, broker)
        async with lock_held_elsewhere(resources) as other:
            relay.accept(await add(resources, row("payment", 1)))
            drain = asyncio.create_task(relay.drain())
            await asyncio.sleep(0.3)
            assert not drain.done()  # queued behind the other holder
            assert broker.accepted == []
            await other.commit()  # the other drain ends
            assert await asyncio.wait_for(drain, 5) == 1
        assert broker.accepted == [("payment", 1)]
        assert await waiting(resources) == 0

    async def test_a_drain_that_cannot_have_the_lock_in_time_leaves_its_rows_waiting(
        self, resources: Resources, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(relay_module, "LOCK_WAIT", "200ms")
        broker = Refusing()
        relay = await relay_of(resources, broker)
        async with lock_held_elsewhere(resources) as other:
            relay.accept(await add(resources, row("payment", 1)))
            assert await relay.drain() == 0
            await other.rollback()
        assert broker.accepted == []
        assert await waiting(resources) == 1  # nothing marked: the next drain sends it
        await relay.drain()
        assert broker.accepted == [("payment", 1)]
        # the connection that waited went back to the pool fit for use: no transaction left
        async with resources.engine.connect() as connection:
            raw = await connection.get_raw_connection()
            assert raw.driver_connection is not None
            assert not raw.driver_connection.is_in_transaction()
