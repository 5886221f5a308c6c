"""What the dashboard's pages show, each read in one use case (the pages only render it)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from service.catalog.catalog import Catalog
from service.db.unit_of_work import UnitOfWork
from service.domain.callers import Caller
from service.usecases import bulk_actions, queries, task_types, tasks as task_usecases
from service.usecases.task_types import TaskTypeView
from service.usecases.views import AttemptView, EventView, LogView, TaskPublic

#: log lines a task page shows at first (the newest; the live tail pages on)
LOG_LINES = 200


@dataclass(frozen=True, slots=True)
class TaskPage:
    task: TaskPublic
    events: list[EventView]
    attempts: list[AttemptView]
    logs: list[LogView]
    log_total: int
    #: the buttons its status allows
    actions: tuple[str, ...]
    report_file_id: str | None


def actions_for(task: TaskPublic) -> tuple[str, ...]:
    """What a person may do with the task now (the use cases would refuse the others)."""
    allowed = [
        action.value
        for action, statuses in bulk_actions.APPLIES_TO.items()
        if task.status in statuses and not (action.value == "cancel" and task.cancel_requested)
    ]
    if task.status.value != "processing":
        allowed.append("delete")
    return tuple(allowed)


async def task_page(uow: UnitOfWork, caller: Caller, task_id: UUID) -> TaskPage:
    """A task with its timeline, attempts and last log lines (404 for another user's)."""
    record = await task_usecases.get(uow, caller, task_id)
    task = TaskPublic.of(record)
    events = await queries.events(uow, caller, task_id)
    attempts = await queries.attempts(uow, caller, task_id)
    _, total = await queries.logs(uow, caller, task_id, level=None, page=1, page_size=1)
    last_page = max(1, -(-total // LOG_LINES))
    logs, _ = await queries.logs(
        uow, caller, task_id, level=None, page=last_page, page_size=LOG_LINES
    )
    return TaskPage(
        task=task,
        events=events,
        attempts=attempts,
        logs=logs,
        log_total=total,
        actions=actions_for(task),
        report_file_id=record.report_file_id,
    )


def creatable_types(catalog: Catalog, caller: Caller) -> list[TaskTypeView]:
    """The task types the caller may create, with their params' JSON Schema."""
    return [t for t in task_types.list_types(catalog, caller) if t.allowed]
