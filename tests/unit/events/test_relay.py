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
