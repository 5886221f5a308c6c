"""OutboxRelay.run: it must stop when its process shuts down, whatever it was doing."""

from __future__ import annotations

import asyncio

import pytest

from service.events.inprocess import InProcessPublisher
from service.events.relay import OutboxRelay


class TestRelayShutdown:
    @pytest.mark.parametrize("turns", range(6))
    async def test_a_cancel_right_after_a_kick_stops_the_relay(
        self, monkeypatch: pytest.MonkeyPatch, turns: int
    ) -> None:
        """A commit wakes the relay just as the app shuts down: the cancel must not be lost."""
        relay = OutboxRelay(None, InProcessPublisher(), sweep_seconds=30)  # type: ignore[arg-type]
        drains = 0

        async def drain() -> int:
            nonlocal drains
            drains += 1
            return 0

        monkeypatch.setattr(relay, "drain", drain)
        task = asyncio.create_task(relay.run())
        for _ in range(3):
            await asyncio.sleep(0)  # the relay now waits for a kick
        relay.kick()
        for _ in range(turns):
            await asyncio.sleep(0)
        task.cancel()
        try:
            done, _ = await asyncio.wait([task], timeout=1)
            assert task in done, f"the relay ignored its cancel after {turns} loop turns"
            assert task.cancelled()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


class TestCompany:
    async def test_new_tasks_rows_wait_for_the_group_being_written_then_go_out_together(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A group of creates' rows are drained once the group written meanwhile committed:
        two groups' rows in one drain."""
        from datetime import UTC, datetime
        from uuid import uuid4

        from service.db.repositories.outbox import OutboxRecord
        from service.events import relay as relay_module

        relay = OutboxRelay(None, InProcessPublisher(), sweep_seconds=30)  # type: ignore[arg-type]
        drained: list[list[int]] = []
        waits: list[float] = []

        async def drain() -> int:
            fresh, relay._fresh = relay._fresh, []
            drained.append([r.id for r in fresh])
            return len(fresh)

        def row(i: int) -> OutboxRecord:
            at = datetime.now(UTC)
            return OutboxRecord(i, "operations.task.created", uuid4(), {}, None, at, opens=True)

        async def next_commit(timeout: float) -> None:  # the next group commits meanwhile
            waits.append(timeout)
            relay.accept([row(2)])

        monkeypatch.setattr(relay, "drain", drain)
        relay.company = next_commit
        task = asyncio.create_task(relay.run())
        relay.accept([row(1)])
        for _ in range(5):
            await asyncio.sleep(0)
        await relay.stop(task)
        assert waits == [relay_module.COMPANY_SECONDS]
        assert drained[0] == [1, 2]
