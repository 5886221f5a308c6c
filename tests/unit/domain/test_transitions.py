"""The task state machine: every pair of statuses, legal or not."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from service.domain import transitions
from service.domain.errors import IllegalTransition
from service.domain.events import EventType
from service.domain.tasks import FINISHED, TaskStatus, TaskStatus as S
from service.domain.transitions import creation_event, initial

#: Written out from DESIGN.md §3 (plus `waiting` for an upload), independently of ALLOWED.
LEGAL: dict[tuple[S, S], EventType] = {
    (S.WAITING, S.PENDING): EventType.CREATED,  # its input file arrived
    (S.WAITING, S.FAILED): EventType.FAILED,
    (S.WAITING, S.CANCELLED): EventType.CANCELLED,
    (S.SCHEDULED, S.PENDING): EventType.CREATED,  # due: the work trigger goes out
    (S.SCHEDULED, S.CANCELLED): EventType.CANCELLED,
    (S.PENDING, S.PROCESSING): EventType.STARTED,
    (S.PENDING, S.CANCELLED): EventType.CANCELLED,
    (S.PROCESSING, S.COMPLETED): EventType.COMPLETED,
    (S.PROCESSING, S.FAILED): EventType.FAILED,
    (S.PROCESSING, S.CANCELLED): EventType.CANCELLED,
    (S.PROCESSING, S.PENDING): EventType.RETRIED,  # lease expired or retryable error
    (S.FAILED, S.PENDING): EventType.RETRIED,
    (S.CANCELLED, S.PENDING): EventType.RETRIED,
}
ILLEGAL = [pair for pair in itertools.product(S, S) if pair not in LEGAL]


def _id(pair: tuple[S, S]) -> str:
    return f"{pair[0].value}->{pair[1].value}"


class TestLegalTransitions:
    @pytest.mark.parametrize(("pair", "event"), LEGAL.items(), ids=[_id(p) for p in LEGAL])
    def test_returns_the_event_the_move_implies(self, pair: tuple[S, S], event: EventType) -> None:
        current, to = pair
        assert transitions.transition(current, to) is event
        assert transitions.is_allowed(current, to)

    def test_the_table_allows_exactly_the_designed_moves(self) -> None:
        allowed = {(c, t) for c, targets in transitions.ALLOWED.items() for t in targets}
        assert allowed == set(LEGAL)


class TestIllegalTransitions:
    @pytest.mark.parametrize("pair", ILLEGAL, ids=[_id(p) for p in ILLEGAL])
    def test_raises_with_a_message_naming_both_statuses(self, pair: tuple[S, S]) -> None:
        current, to = pair
        assert not transitions.is_allowed(current, to)
        with pytest.raises(IllegalTransition) as caught:
            transitions.transition(current, to)
        message = str(caught.value)
        assert f"cannot move a {current.value} task to {to.value}" in message
        assert caught.value.detail == message
        assert caught.value.context == {"current": current.value, "target": to.value}

    def test_a_completed_task_is_reported_as_final(self) -> None:
        with pytest.raises(IllegalTransition, match=r"completed task to pending; it is final"):
            transitions.transition(S.COMPLETED, S.PENDING)

    def test_the_message_lists_the_allowed_targets(self) -> None:
        with pytest.raises(IllegalTransition, match=r"; allowed: cancelled, processing$"):
            transitions.transition(S.PENDING, S.COMPLETED)

    @pytest.mark.parametrize("status", list(S), ids=[s.value for s in S])
    def test_no_status_moves_to_itself(self, status: S) -> None:
        with pytest.raises(IllegalTransition):
            transitions.transition(status, status)

    @pytest.mark.parametrize("status", list(S), ids=[s.value for s in S])
    def test_nothing_moves_back_to_scheduled(self, status: S) -> None:
        assert not transitions.is_allowed(status, S.SCHEDULED)


class TestCreation:
    NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)

    def test_the_first_status_of_a_new_task(self) -> None:
        later = self.NOW + timedelta(hours=1)
        assert initial(waits_for_file=True, run_at=later, now=self.NOW) is TaskStatus.WAITING
        assert initial(waits_for_file=False, run_at=later, now=self.NOW) is TaskStatus.SCHEDULED
        assert initial(waits_for_file=False, run_at=self.NOW, now=self.NOW) is TaskStatus.PENDING
        assert initial(waits_for_file=False, run_at=None, now=self.NOW) is TaskStatus.PENDING

    def test_each_first_status_has_its_event_and_no_other_status_is_a_start(self) -> None:
        assert creation_event(TaskStatus.PENDING) is EventType.CREATED
        assert creation_event(TaskStatus.SCHEDULED) is EventType.SCHEDULED
        assert creation_event(TaskStatus.WAITING) is EventType.WAITING
        for status in (TaskStatus.PROCESSING, *FINISHED):
            with pytest.raises(IllegalTransition):
                creation_event(status)
