"""Writes the trail of a state change: a task_events row and an outbox row, same transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from service.db.repositories.history import HistoryRepository
from service.db.repositories.outbox import OutboxRepository
from service.domain.events import EventType
from service.domain.tasks import TaskStatus
from service.usecases.views import TaskView

OUTBOX_WRITTEN = "outbox_written"


def wrote_outbox(session: AsyncSession) -> bool:
    """Whether this session queued events, so the relay should be woken after its commit."""
    return bool(session.info.pop(OUTBOX_WRITTEN, False))


@dataclass(frozen=True, slots=True)
class Change:
    """One recorded change of one task; `task` is its state after the change."""

    task: TaskView
    event: EventType
    from_status: TaskStatus | None
    actor: str | None = None
    message: str | None = None


async def record(
    session: AsyncSession,
    changes: Sequence[Change],
    *,
    now: datetime,
    traceparent: str | None = None,
) -> None:
    """Append one event row and one outbox row per change; the caller's transaction commits both."""
    if not changes:
        return
    session.info[OUTBOX_WRITTEN] = True
    await HistoryRepository(session).add_events(
        [
            {
                "task_id": c.task.id,
                "event_type": c.event.value,
                "from_status": c.from_status.value if c.from_status else None,
                "to_status": c.task.status.value,
                "actor": c.actor,
                "message": c.message,
                "created_at": now,
            }
            for c in changes
        ]
    )
    await OutboxRepository(session).add(
        [
            {
                "topic": c.event.value,
                "task_id": c.task.id,
                "payload": c.task.snapshot(),
                "traceparent": traceparent,
                "created_at": now,
            }
            for c in changes
        ]
    )


async def announce(
    session: AsyncSession, task: TaskView, event: EventType, *, now: datetime
) -> None:
    """An outbox row without a history row, for throttled notices such as progress."""
    session.info[OUTBOX_WRITTEN] = True
    await OutboxRepository(session).add(
        [{"topic": event.value, "task_id": task.id, "payload": task.snapshot(), "created_at": now}]
    )
