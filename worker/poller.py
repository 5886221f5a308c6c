"""Fallback poller: claims from the database when doorbells may not be arriving."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from service.config import Settings
from worker.runner import Runner


class Poller:
    """Polls fast while doorbells are unreliable (`healthy()` is False), slowly otherwise."""

    def __init__(self, runner: Runner, settings: Settings, healthy: Callable[[], bool]) -> None:
        self.runner = runner
        self.fast = settings.poll_fast_seconds
        self.slow = settings.poll_slow_seconds
        self.healthy = healthy
        self.polls = 0

    @property
    def mode(self) -> str:
        return "slow" if self.healthy() else "fast"

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.slow if self.healthy() else self.fast)
            self.polls += 1
            self.runner.wake("poll")

    def health(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "polls": self.polls,
            "intervalSeconds": self.slow if self.healthy() else self.fast,
        }
