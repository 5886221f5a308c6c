"""Writes the trail of a state change: a task_events row and an outbox row, same transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.db.repositories.history import HistoryRepository
from service.db.repositories.outbox import NewOutboxRow, OutboxRepository
from service.db.unit_of_work import StatementUnit, UnitOfWork
from service.domain.events import EventType
from service.domain.tasks import TaskRecord, TaskStatus
from service.usecases.views import snapshot


@dataclass(frozen=True, slots=True)
class Change:
    """One recorded change of one task; `task` is its state after the change."""

    task: TaskRecord
    event: EventType
    from_status: TaskStatus | None
    actor: str | None = None
    message: str | None = None


def trail(
    changes: Sequence[Change],
    *,
    now: datetime,
    traceparent: str | None = None,
    opens: bool = False,
    claimed_until: datetime | None = None,
) -> tuple[list[dict[str, Any]], list[NewOutboxRow]]:
    """The task_events rows and the outbox rows of `changes` (one of each per change);
    `opens`: they are the first events of new tasks, each at its task's creation time (the
    creates a group commit writes together were made at their own times). An outbox row carries
    `traceparent`, else the trace its task was created in (so the CloudEvents of a task continue
    its trace); `claimed_until`: this process's relay publishes the rows itself until then."""
    times = [c.task.created_at if opens else now for c in changes]
    events = [
        {
            "task_id": c.task.id,
            "event_type": c.event.value,
            "from_status": c.from_status.value if c.from_status else None,
            "to_status": c.task.status.value,
            "actor": c.actor,
            "message": c.message,
            "created_at": at,
        }
        for c, at in zip(changes, times, strict=True)
    ]
    outbox = [
        NewOutboxRow(
            c.event.value,
            c.task.id,
            snapshot(c.task),
            at,
            traceparent or c.task.traceparent,
            opens,
            claimed_until=claimed_until,
        )
        for c, at in zip(changes, times, strict=True)
    ]
    return events, outbox


async def publish(uow: UnitOfWork, rows: Sequence[NewOutboxRow]) -> None:
    """Append outbox rows in the unit's transaction; the relay hears of them once it commits."""
    uow.facts.outbox.extend(await OutboxRepository(uow.session).add(rows))


async def record(
    uow: UnitOfWork,
    changes: Sequence[Change],
    *,
    now: datetime,
    traceparent: str | None = None,
) -> None:
    """Append one event row and one outbox row per change; the unit's transaction commits both.

    A change that makes a task pending and due now is noted as ready, so the workers of this
    process can claim it as soon as the transaction commits.
    """
    if not changes:
        return
    events, outbox = trail(changes, now=now, traceparent=traceparent)
    await HistoryRepository(uow.session).add_events(events)
    await publish(uow, outbox)
    note_ready(uow, [c.task for c in changes], now=now)


def note_ready(
    uow: UnitOfWork | StatementUnit, tasks: Sequence[TaskRecord], *, now: datetime
) -> None:
    """Pending tasks that are due now: the workers of this process may claim them at once."""
    uow.facts.ready.extend(
        t.id
        for t in tasks
        if t.status is TaskStatus.PENDING and t.available_at <= now and t.deleted_at is None
    )


async def announce(uow: UnitOfWork, task: TaskRecord, event: EventType, *, now: datetime) -> None:
    """An outbox row without a history row, for throttled notices such as progress."""
    row = NewOutboxRow(event.value, task.id, snapshot(task), now, task.traceparent)
    await publish(uow, [row])
