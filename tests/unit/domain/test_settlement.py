"""The one rule for the end of a run: every ending, with retries left and used up."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from service.domain.backoff import RetryPolicy
from service.domain.events import EventType
from service.domain.settlement import AttemptOutcome, Budget, Ending, settle
from service.domain.tasks import TaskStatus

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy(base=1.0, cap=60.0, jitter=0.0)
FRESH = Budget(retry_count=0, auto_retries=0, max_retries=3)
SPENT = Budget(retry_count=5, auto_retries=3, max_retries=3)


class TestFinalEndings:
    def test_completed_clears_the_error(self) -> None:
        s = settle(FRESH, Ending.COMPLETED, now=NOW, policy=POLICY, rng=random.Random(1))
        assert (s.to, s.event, s.attempt) == (
            TaskStatus.COMPLETED,
            EventType.COMPLETED,
            AttemptOutcome.COMPLETED,
        )
        assert (s.error, s.sets_error, s.available_at, s.finished) == (None, True, None, True)
        assert (s.retry_count, s.auto_retries) == (0, 0)

    def test_a_permanent_failure_fails_at_once_whatever_the_budget(self) -> None:
        s = settle(FRESH, Ending.FAILED, now=NOW, policy=POLICY, rng=random.Random(1), error="bad")
        assert (s.to, s.event, s.attempt) == (
            TaskStatus.FAILED,
            EventType.FAILED,
            AttemptOutcome.FAILED,
        )
        assert (s.error, s.message, s.retry_count) == ("bad", "bad", 0)

    def test_a_cancel_keeps_the_tasks_error(self) -> None:
        s = settle(FRESH, Ending.CANCELLED, now=NOW, policy=POLICY, rng=random.Random(1))
        assert (s.to, s.event, s.attempt) == (
            TaskStatus.CANCELLED,
            EventType.CANCELLED,
            AttemptOutcome.CANCELLED,
        )
        assert (s.sets_error, s.message, s.finished) == (False, "cancelled while running", True)


class TestRelease:
    @pytest.mark.parametrize("budget", [FRESH, SPENT])
    def test_a_release_spends_no_retry_and_is_due_at_once(self, budget: Budget) -> None:
        s = settle(budget, Ending.RELEASED, now=NOW, policy=POLICY, rng=random.Random(1))
        assert (s.to, s.event, s.attempt) == (
            TaskStatus.PENDING,
            EventType.RETRIED,
            AttemptOutcome.RELEASED,
        )
        assert (s.retry_count, s.auto_retries) == (budget.retry_count, budget.auto_retries)
        assert (s.available_at, s.sets_error, s.finished) == (NOW, False, False)
        assert s.message == "released at worker shutdown"

    def test_a_release_says_why_when_told(self) -> None:
        s = settle(
            FRESH, Ending.RELEASED, now=NOW, policy=POLICY, rng=random.Random(1), error="db away"
        )
        assert s.message == "db away"


class TestRetry:
    def test_a_retry_with_budget_left_backs_off_and_counts(self) -> None:
        budget = Budget(retry_count=4, auto_retries=1, max_retries=3)
        s = settle(
            budget, Ending.RETRY, now=NOW, policy=POLICY, rng=random.Random(1), error="flaky"
        )
        assert (s.to, s.event, s.attempt) == (
            TaskStatus.PENDING,
            EventType.RETRIED,
            AttemptOutcome.RETRIED,
        )
        assert (s.retry_count, s.auto_retries) == (5, 2)  # every retry, and the automatic ones
        assert s.available_at == NOW + timedelta(seconds=2)  # 1 s, 2 s, 4 s …
        assert (s.error, s.message) == ("flaky", "retry 2/3 in 2.0s: flaky")

    def test_a_delay_the_handler_asks_for_is_kept(self) -> None:
        s = settle(
            FRESH,
            Ending.RETRY,
            now=NOW,
            policy=POLICY,
            rng=random.Random(1),
            error="later",
            requested_delay=30,
        )
        assert s.available_at == NOW + timedelta(seconds=30)

    def test_retries_used_up_fail_the_task_saying_so(self) -> None:
        s = settle(SPENT, Ending.RETRY, now=NOW, policy=POLICY, rng=random.Random(1), error="flaky")
        assert (s.to, s.event, s.attempt) == (
            TaskStatus.FAILED,
            EventType.FAILED,
            AttemptOutcome.FAILED,
        )
        assert s.error == s.message == "flaky (gave up after 3 retries)"
        assert (s.retry_count, s.auto_retries, s.available_at) == (5, 3, None)

    def test_no_retries_at_all(self) -> None:
        none = Budget(retry_count=0, auto_retries=0, max_retries=0)
        s = settle(none, Ending.RETRY, now=NOW, policy=POLICY, rng=random.Random(1), error="x")
        assert s.to is TaskStatus.FAILED


class TestLeaseExpired:
    def test_a_lost_worker_hands_the_task_back_while_retries_are_left(self) -> None:
        s = settle(
            FRESH, Ending.LEASE_EXPIRED, now=NOW, policy=POLICY, rng=random.Random(1), error="gone"
        )
        assert (s.to, s.attempt) == (TaskStatus.PENDING, AttemptOutcome.LEASE_EXPIRED)
        assert s.message == "gone; retry 1/3"
        assert (s.retry_count, s.auto_retries) == (1, 1)
        assert s.available_at == NOW + timedelta(seconds=1)

    def test_and_fails_it_once_they_are_used_up(self) -> None:
        s = settle(
            SPENT, Ending.LEASE_EXPIRED, now=NOW, policy=POLICY, rng=random.Random(1), error="gone"
        )
        assert (s.to, s.attempt) == (TaskStatus.FAILED, AttemptOutcome.LEASE_EXPIRED)
        assert s.message == "gone (gave up after 3 retries)"


def test_every_ending_is_settled_from_processing() -> None:
    """Exhaustive: each ending gives a status the state machine allows from processing."""
    for ending in Ending:
        for budget in (FRESH, SPENT):
            s = settle(budget, ending, now=NOW, policy=POLICY, rng=random.Random(1), error="e")
            assert s.to in {
                TaskStatus.COMPLETED,
                TaskStatus.FAILED,
                TaskStatus.CANCELLED,
                TaskStatus.PENDING,
            }
            assert s.finished == (s.available_at is None)
