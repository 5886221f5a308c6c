"""Are doorbells (pushed task events) arriving? The poller polls fast whenever they may not be."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from service.events.base import Publisher
from service.events.relay import OutboxRelay

STALE_AFTER = 2.0  # a poll that finds tasks waiting longer than this means pushes went missing
FAST_FOR = 30.0  # seconds of fast polling after any sign of trouble


class DoorbellHealth:
    """Healthy while the broker is reachable, publishing works and polls find nothing stale.

    `expected` is False when no doorbell can reach this worker at all (an in-process bus with no
    API in the process): then the poller is the only way in and always polls fast.
    """

    def __init__(self, publisher: Publisher, relay: OutboxRelay, *, expected: bool) -> None:
        self.publisher = publisher
        self.relay = relay
        self.expected = expected
        self.broker_ok = True
        self._trouble_until = 0.0
        self.reason = "ok" if expected else "no doorbell source in this process"

    def healthy(self) -> bool:
        if not self.expected:
            return False
        if not self.broker_ok:
            self.reason = "sidecar or broker unreachable"
            return False
        if self.relay.failures:
            self.reason = (
                "the outbox relay cannot reach the database"
                if self.relay.draining.failures
                else "publishing fails"
            )
            return False
        if time.monotonic() < self._trouble_until:
            return False
        self.reason = "ok"
        return True

    def poll_found(self, waited_seconds: float) -> None:
        """The poller claimed a task that had waited this long: if long, pushes are not arriving."""
        if waited_seconds > STALE_AFTER:
            self._trouble_until = time.monotonic() + FAST_FOR
            self.reason = f"poll found a task that waited {waited_seconds:.1f}s"

    async def watch(self, interval: float = 2.0) -> None:
        """Ask the publisher (the sidecar's outbound health) every `interval` seconds."""
        while True:
            self.broker_ok = await self.publisher.healthy()
            if not self.broker_ok:
                self._trouble_until = time.monotonic() + FAST_FOR
            await asyncio.sleep(interval)

    def health(self) -> dict[str, Any]:
        healthy = self.healthy()
        return {"healthy": healthy, "reason": "ok" if healthy else self.reason}
