"""Retry policy: exponential backoff with jitter, bounded by a task's maxRetries."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """Run the task again after `delay` seconds as attempt number `retry_count`."""

    delay: float
    retry_count: int


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """1 s, 2 s, 4 s … capped at `cap`, each scaled by a random factor in [1-jitter, 1+jitter]."""

    base: float = 1.0
    cap: float = 60.0
    jitter: float = 0.2

    def delay(self, retry_count: int, rng: random.Random) -> float:
        raw = min(self.cap, self.base * float(2 ** max(retry_count, 0)))
        return min(self.cap, raw * rng.uniform(1 - self.jitter, 1 + self.jitter))

    def decide(
        self,
        retry_count: int,
        max_retries: int,
        rng: random.Random,
        *,
        requested_delay: float | None = None,
    ) -> RetryDecision | None:
        """Next retry after `retry_count` earlier retries, or None when they are used up."""
        if retry_count >= max_retries:
            return None
        delay = requested_delay if requested_delay is not None else self.delay(retry_count, rng)
        return RetryDecision(delay=max(0.0, delay), retry_count=retry_count + 1)
