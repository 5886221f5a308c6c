"""How a run ends: the one rule for what a task becomes after a run, pure of I/O.

A worker's outcome (completed, failed, asked to retry, cancelled, released at shutdown) and a
lease that ran out (detect-timeouts) are settled here, so retry-or-fail-or-release is written
once: the new status (checked by the state machine), its event, the attempt's outcome, the
counters and when the task may run again.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import assert_never

from service.domain import transitions
from service.domain.backoff import RetryPolicy
from service.domain.events import EventType
from service.domain.tasks import TaskStatus


class Ending(enum.StrEnum):
    """How a run ended, as the worker (or the lease clock) saw it."""

    COMPLETED = "completed"  #: the handler returned
    FAILED = "failed"  #: a permanent failure: no retry would help
    RETRY = "retry"  #: a transient failure, or the handler asked to run again later
    CANCELLED = "cancelled"  #: stopped on a cancel request
    RELEASED = "released"  #: not the task's fault (shutdown, database away): back, no retry spent
    LEASE_EXPIRED = "lease_expired"  #: its worker stopped heartbeating


class AttemptOutcome(enum.StrEnum):
    """What the attempt row records."""

    COMPLETED = "completed"
    FAILED = "failed"
    RETRIED = "retried"
    CANCELLED = "cancelled"
    RELEASED = "released"
    LEASE_EXPIRED = "lease_expired"


@dataclass(frozen=True, slots=True)
class Budget:
    """A task's retry counters as they stood when the run began."""

    retry_count: int  #: every retry so far, a person's included
    auto_retries: int  #: automatic retries since a person last started it
    max_retries: int  #: the bound of auto_retries


@dataclass(frozen=True, slots=True)
class Settlement:
    """What the task becomes: status, event, counters, when it may run again."""

    to: TaskStatus
    event: EventType
    attempt: AttemptOutcome
    #: the event's message
    message: str | None
    #: the task's errorMessage after it (None clears it), when `sets_error`
    error: str | None
    retry_count: int
    auto_retries: int
    #: pending again: when it may be claimed; None when the task is finished
    available_at: datetime | None
    #: False: errorMessage stays as it was (a cancel or a release says nothing of the task)
    sets_error: bool = True

    @property
    def finished(self) -> bool:
        return self.to.is_finished


def settle(
    budget: Budget,
    ending: Ending,
    *,
    now: datetime,
    policy: RetryPolicy,
    rng: random.Random,
    error: str | None = None,
    requested_delay: float | None = None,
) -> Settlement:
    """The one rule for the end of a run (from processing)."""
    if ending is Ending.COMPLETED:
        return _to(TaskStatus.COMPLETED, AttemptOutcome.COMPLETED, budget, None, None)
    if ending is Ending.CANCELLED:
        cancelled = _to(
            TaskStatus.CANCELLED, AttemptOutcome.CANCELLED, budget, "cancelled while running", None
        )
        return replace(cancelled, sets_error=False)
    if ending is Ending.FAILED:
        return _to(TaskStatus.FAILED, AttemptOutcome.FAILED, budget, error, error)
    if ending is Ending.RELEASED:
        message = error or "released at worker shutdown"
        released = _to(TaskStatus.PENDING, AttemptOutcome.RELEASED, budget, message, None, now)
        return replace(released, sets_error=False)
    if ending is Ending.RETRY:
        return _retry(
            budget, error or "failed", AttemptOutcome.RETRIED, now, policy, rng, requested_delay
        )
    if ending is Ending.LEASE_EXPIRED:
        return _retry(
            budget, error or "lease expired", AttemptOutcome.LEASE_EXPIRED, now, policy, rng, None
        )
    assert_never(ending)


def _to(
    to: TaskStatus,
    attempt: AttemptOutcome,
    budget: Budget,
    message: str | None,
    error: str | None,
    available_at: datetime | None = None,
) -> Settlement:
    return Settlement(
        to=to,
        event=transitions.transition(TaskStatus.PROCESSING, to),
        attempt=attempt,
        message=message,
        error=error,
        retry_count=budget.retry_count,
        auto_retries=budget.auto_retries,
        available_at=available_at,
    )


def _retry(
    budget: Budget,
    error: str,
    attempt: AttemptOutcome,
    now: datetime,
    policy: RetryPolicy,
    rng: random.Random,
    requested_delay: float | None,
) -> Settlement:
    """Pending again after a backoff while retries are left; failed once they are used up.

    A lease that ran out says so in its messages ("…; retry 1/3"), a run that failed gives its
    error and when it runs again ("retry 1/3 in 2.0s: …").
    """
    decision = policy.decide(
        budget.auto_retries, budget.max_retries, rng, requested_delay=requested_delay
    )
    if decision is None:
        gave_up = f"{error} (gave up after {budget.auto_retries} retries)"
        failed = AttemptOutcome.FAILED if attempt is AttemptOutcome.RETRIED else attempt
        return _to(TaskStatus.FAILED, failed, budget, gave_up, gave_up)
    counted = f"retry {decision.retry_count}/{budget.max_retries}"
    message = (
        f"{error}; {counted}"
        if attempt is AttemptOutcome.LEASE_EXPIRED
        else f"{counted} in {decision.delay:.1f}s: {error}"
    )
    return Settlement(
        to=TaskStatus.PENDING,
        event=transitions.transition(TaskStatus.PROCESSING, TaskStatus.PENDING),
        attempt=attempt,
        message=message,
        error=error,
        retry_count=budget.retry_count + 1,
        auto_retries=decision.retry_count,
        available_at=now + timedelta(seconds=decision.delay),
    )
