"""The task state machine: one table of legal moves and the event each move implies."""

from __future__ import annotations

from datetime import datetime
from typing import assert_never

from service.domain.errors import IllegalTransition
from service.domain.events import EventType
from service.domain.tasks import TaskStatus

S = TaskStatus

ALLOWED: dict[TaskStatus, frozenset[TaskStatus]] = {
    S.WAITING: frozenset({S.PENDING, S.FAILED, S.CANCELLED}),
    S.SCHEDULED: frozenset({S.PENDING, S.CANCELLED}),
    S.PENDING: frozenset({S.PROCESSING, S.CANCELLED}),
    S.PROCESSING: frozenset({S.COMPLETED, S.FAILED, S.CANCELLED, S.PENDING}),
    S.COMPLETED: frozenset(),
    S.FAILED: frozenset({S.PENDING}),
    S.CANCELLED: frozenset({S.PENDING}),
}


def is_allowed(current: TaskStatus, to: TaskStatus) -> bool:
    return to in ALLOWED[current]


def transition(current: TaskStatus, to: TaskStatus) -> EventType:
    """Check one status change and return the event it implies; raise IllegalTransition."""
    if not is_allowed(current, to):
        raise IllegalTransition(
            f"cannot move a {current.value} task to {to.value}"
            + (
                f"; allowed: {', '.join(sorted(s.value for s in ALLOWED[current]))}"
                if ALLOWED[current]
                else "; it is final"
            ),
            current=current.value,
            target=to.value,
        )
    return event_for(current, to)


def initial(*, waits_for_file: bool, run_at: datetime | None, now: datetime) -> TaskStatus:
    """The first status of a new task: waiting for its input file, scheduled for later, or
    ready to run."""
    if waits_for_file:
        return S.WAITING
    if run_at is not None and run_at > now:
        return S.SCHEDULED
    return S.PENDING


def creation_event(status: TaskStatus) -> EventType:
    """The event of a task created in `status` (the first statuses a task can have)."""
    if status is S.PENDING:
        return EventType.CREATED
    if status is S.SCHEDULED:
        return EventType.SCHEDULED
    if status is S.WAITING:
        return EventType.WAITING
    if status in (S.PROCESSING, S.COMPLETED, S.FAILED, S.CANCELLED):
        raise IllegalTransition(f"a task cannot be created {status.value}", target=status.value)
    assert_never(status)


def event_for(current: TaskStatus, to: TaskStatus) -> EventType:
    """The lifecycle event of a legal move."""
    if to is S.PENDING:
        return EventType.CREATED if current in (S.SCHEDULED, S.WAITING) else EventType.RETRIED
    if to is S.PROCESSING:
        return EventType.STARTED
    if to is S.COMPLETED:
        return EventType.COMPLETED
    if to is S.FAILED:
        return EventType.FAILED
    if to is S.CANCELLED:
        return EventType.CANCELLED
    if to is S.SCHEDULED:
        return EventType.SCHEDULED
    if to is S.WAITING:
        return EventType.WAITING
    assert_never(to)


#: Statuses in which a person may still change a task (PATCH): it has not started.
EDITABLE = frozenset({S.SCHEDULED, S.WAITING, S.PENDING})


def after_edit(current: TaskStatus, *, run_at: datetime | None, now: datetime) -> TaskStatus:
    """The status of an edited task that was not running: a new scheduledAt decides again, as
    at create, between scheduled and pending (a waiting task keeps waiting for its file).

    This is not a move of ALLOWED: the task has not started, so it goes back to the start.
    """
    if current is S.WAITING:
        return S.WAITING
    return initial(waits_for_file=False, run_at=run_at, now=now)
