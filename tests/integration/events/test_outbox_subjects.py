"""Outbox rows without a task are ordered by their subject (settings.changed of one key): one
waiting row holds back the later rows of its subject only, on both databases."""

from __future__ import annotations

from service.bootstrap import Resources
from service.db.repositories.outbox import OutboxRepository
from service.events.relay import OutboxRelay
from tests.integration.events.support import Refusing, add, row


class TestOrderingKey:
    async def test_an_older_row_of_the_same_subject_holds_a_fresh_one_back(
        self, resources: Resources
    ) -> None:
        await add(resources, row("payment", 1))
        [later] = await add(resources, row("payment", 2))
        [elsewhere] = await add(resources, row("shipping", 1))
        async with resources.unit() as uow:
            repo = OutboxRepository(uow.session)
            assert await repo.earlier_unpublished([later])
            assert not await repo.earlier_unpublished([elsewhere])

    async def test_a_refused_event_stops_its_subject_only(self, resources: Resources) -> None:
        await add(
            resources, row("payment", 1), row("shipping", 1), row("payment", 2), row("shipping", 2)
        )
        broker = Refusing({("payment", 1)}, max_in_flight=4)  # keys in parallel
        relay = OutboxRelay(resources.sessionmaker, broker)
        await relay.drain()
        assert broker.accepted == [("shipping", 1), ("shipping", 2)]
        broker.refuse.clear()
        await relay.drain()
        assert broker.accepted[2:] == [("payment", 1), ("payment", 2)]
