"""Progress and counts reported by a running task, and its cancellation flag."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from service.db.repositories.tasks import TaskChanges, TaskRepository
from service.db.unit_of_work import UnitOfWork
from service.domain.errors import Conflict, InvalidInput, NotFound
from service.domain.events import EventType
from service.domain.tasks import TaskRecord
from service.telemetry import tracing
from service.usecases import history, notifications


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

    def changes(self) -> TaskChanges:
        changes: TaskChanges = {}
        if self.progress is not None:
            changes["progress"] = self.progress
        if self.total_items is not None:
            changes["total_items"] = self.total_items
        if self.processed_items is not None:
            changes["processed_items"] = self.processed_items
        if self.succeeded_items is not None:
            changes["succeeded_items"] = self.succeeded_items
        if self.failed_items is not None:
            changes["failed_items"] = self.failed_items
        if self.result is not None:
            changes["result"] = self.result
        return changes


@tracing.traced("progress.report")
async def report(
    uow: UnitOfWork,
    task_id: UUID,
    update: ProgressUpdate,
    *,
    now: datetime,
    announce: bool,
    announce_every: float = 0.0,
) -> TaskRecord:
    """Store progress of a processing task; `announce` also queues a progress notice, at most
    one per `announce_every` seconds per task (counted in the database, so reports from any
    number of processes share the budget).

    The returned task carries cancel_requested, so the reporter learns of a cancel on each report.
    Counts that would leave processed_items above total_items are refused (InvalidInput).
    """
    repo = TaskRepository(uow.session)
    # a little slack: a reporter throttled to the same interval on its own clock is not skipped
    announce_before = now - timedelta(seconds=announce_every * 0.9) if announce else None
    reported = await repo.report_progress(
        task_id, update.changes(), now=now, announce_before=announce_before
    )
    if reported is None:
        current = await repo.get(task_id)
        if current is None:
            raise NotFound(f"task {task_id} not found", task_id=str(task_id))
        raise Conflict(
            "progress can only be reported for a processing task; "
            f"this one is {current.status.value}"
        )
    task, notice_due = reported
    if task.total_items is not None and task.processed_items > task.total_items:
        # the edge rolls the update back with this error
        raise InvalidInput(
            f"processedItems ({task.processed_items}) may not pass totalItems ({task.total_items})",
            field="processedItems",
        )
    if notice_due:
        await history.announce(uow, task, EventType.PROGRESS, now=now)
    await notifications.on_progress(uow, task, now=now)
    return task


async def cancel_requested(uow: UnitOfWork, task_id: UUID) -> bool:
    """Whether a cancel was asked for the task (a running handler reads this between reports)."""
    return await TaskRepository(uow.session).cancel_requested(task_id)
