"""A table drain (a sweep, or the relay's fallback) publishes the rows that waited when it
began: rows other processes commit meanwhile are theirs to publish from memory, and the next
drain's, so two busy workers do not read back each other's events row by row."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from service.bootstrap import Resources
from service.db.engine import session_scope
from service.db.repositories.outbox import NewOutboxRow
from service.events.base import OutgoingEvent
from service.events.relay import OutboxRelay, _take_lock
from tests.integration.events.support import add, row


class Broker:
    kind = "test"
    max_in_flight = 1
    crosses_processes = False

    def __init__(self) -> None:
        self.accepted: list[tuple[str | None, Any]] = []

    async def publish(self, event: OutgoingEvent) -> None:
        self.accepted.append((event.subject, event.data["version"]))

    async def healthy(self) -> bool:
        return True

    async def close(self) -> None:
        return None


class Interleaved(OutboxRelay):
    """A relay whose first batch is followed by another process's commit (`meanwhile`): on
    SQLite, the one writer, that is the only moment another process can write."""

    def __init__(self, resources: Resources, meanwhile: list[NewOutboxRow], **options: Any):
        super().__init__(resources.sessionmaker, Broker(), **options)
        self.resources = resources
        self.meanwhile = meanwhile

    async def _drain_batch(
        self, up_to: int | None, after: int, held: set[Any]
    ) -> tuple[int, int, int, bool]:
        drained = await super()._drain_batch(up_to, after, held)
        if self.meanwhile:
            rows, self.meanwhile = self.meanwhile, []
            await add(self.resources, *rows)
        return drained


class TestTableDrain:
    async def test_it_ends_at_the_rows_that_waited_when_it_began(
        self, resources: Resources
    ) -> None:
        await add(resources, *(row("payment", v) for v in range(1, 6)))
        later = [row("shipping", v) for v in range(1, 4)]
        relay = Interleaved(resources, later, batch_size=2)
        broker = relay.publisher
        assert isinstance(broker, Broker)

        assert await relay.drain() == 5  # three batches, up to the row numbered last at its start
        assert broker.accepted == [("payment", v) for v in range(1, 6)]

        assert await relay.drain() == 3  # the rows committed meanwhile: the next drain's
        assert broker.accepted[5:] == [("shipping", v) for v in range(1, 4)]
        assert await relay.drain() == 0


@pytest.mark.parametrize("dialect", ["postgresql"])
async def test_a_drain_reads_by_index_and_commits_without_a_flush(resources: Resources) -> None:
    """Under the relay lock, PostgreSQL reads no table whole (statistics older than the outbox
    made it scan every row to mark five) and commits without waiting for the disk."""
    async with session_scope(resources.sessionmaker) as session:
        await _take_lock(session)
        assert (await session.execute(text("SHOW enable_seqscan"))).scalar_one() == "off"
        assert (await session.execute(text("SHOW synchronous_commit"))).scalar_one() == "off"
    async with session_scope(resources.sessionmaker) as session:  # for that transaction only
        assert (await session.execute(text("SHOW enable_seqscan"))).scalar_one() == "on"
