"""Progress and counts reported by a running task, and its cancellation flag."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from service.db.repositories.tasks import TaskRepository
from service.domain.errors import Conflict, InvalidInput, NotFound
from service.domain.events import EventType
from service.usecases import history
from service.usecases.views import TaskView


@dataclass(frozen=True, slots=True)
class ProgressUpdate:
    """Fields left None are unchanged."""

    progress: int | None = None
    total_items: int | None = None
    processed_items: int | None = None
    succeeded_items: int | None = None
    failed_items: int | None = None
    #: handler-specific figures shown on the task (rate, ETA, counts by kind)
    result: dict[str, Any] | None = None

    def values(self) -> dict[str, Any]:
        return {
            k: v
            for k, v in {
                "progress": self.progress,
                "total_items": self.total_items,
                "processed_items": self.processed_items,
                "succeeded_items": self.succeeded_items,
                "failed_items": self.failed_items,
                "result": self.result,
            }.items()
            if v is not None
        }


async def report(
    session: AsyncSession,
    task_id: UUID,
    update: ProgressUpdate,
    *,
    now: datetime,
    announce: bool,
    announce_every: float = 0.0,
) -> TaskView:
    """Store progress of a processing task; `announce` also queues a progress notice, at most
    one per `announce_every` seconds per task (counted in the database, so reports from any
    number of processes share the budget).

    The returned task carries cancel_requested, so the reporter learns of a cancel on each report.
    Counts that would leave processed_items above total_items are refused (InvalidInput).
    """
    repo = TaskRepository(session)
    # a little slack: a reporter throttled to the same interval on its own clock is not skipped
    announce_before = now - timedelta(seconds=announce_every * 0.9) if announce else None
    row = await repo.report_progress(
        task_id, {**update.values(), "updated_at": now}, announce_before=announce_before
    )
    if row is None:
        current = await repo.get(task_id)
        if current is None:
            raise NotFound(f"task {task_id} not found", task_id=str(task_id))
        raise Conflict(
            f"progress can only be reported for a processing task; this one is {current.status}"
        )
    task = TaskView.from_row(row._mapping)
    if task.total_items is not None and task.processed_items > task.total_items:
        # the edge rolls the update back with this error
        raise InvalidInput(
            f"processedItems ({task.processed_items}) may not pass totalItems ({task.total_items})",
            field="processedItems",
        )
    if announce and row.progress_announced_at == now:
        await history.announce(session, task, EventType.PROGRESS, now=now)
    return task
