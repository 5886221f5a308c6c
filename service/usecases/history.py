"""Writes the trail of a state change: a task_events row and an outbox row, same transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from service.db.repositories.history import HistoryRepository
from service.db.repositories.outbox import OutboxRepository
from service.domain.events import EventType
from service.domain.tasks import TaskStatus
from service.usecases.views import TaskView

OUTBOX_WRITTEN = "outbox_written"


NEW_PENDING = "new_pending_tasks"


def new_pending(session: AsyncSession) -> list[UUID]:
    """Ids of tasks this session created ready to run (popped: ask once, after the commit)."""
    ids: list[UUID] = session.info.pop(NEW_PENDING, [])
    return ids


def note_new_pending(session: AsyncSession, task_id: UUID) -> None:
    session.info.setdefault(NEW_PENDING, []).append(task_id)


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


def trail(
    changes: Sequence[Change], *, now: datetime, traceparent: str | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The task_events rows and the outbox rows of `changes` (one of each per change)."""
    events = [
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
    outbox = [
        {
            "topic": c.event.value,
            "task_id": c.task.id,
            "payload": c.task.snapshot(),
            "traceparent": traceparent,
            "created_at": now,
        }
        for c in changes
    ]
    return events, outbox


def note_written(session: AsyncSession) -> None:
    """This session queued events: wake the relay after its commit (see wrote_outbox)."""
    session.info[OUTBOX_WRITTEN] = True


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
    note_written(session)
    events, outbox = trail(changes, now=now, traceparent=traceparent)
    await HistoryRepository(session).add_events(events)
    await OutboxRepository(session).add(outbox)


async def announce(
    session: AsyncSession, task: TaskView, event: EventType, *, now: datetime
) -> None:
    """An outbox row without a history row, for throttled notices such as progress."""
    session.info[OUTBOX_WRITTEN] = True
    await OutboxRepository(session).add(
        [{"topic": event.value, "task_id": task.id, "payload": task.snapshot(), "created_at": now}]
    )
