"""Read models: task lists with filters and paging, event history, logs and attempts."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

from service.db.repositories.history import HistoryRepository
from service.db.repositories.tasks import Cursor, Listed, TaskFilters, TaskRepository
from service.db.unit_of_work import UnitOfWork
from service.domain.callers import Caller
from service.telemetry import tracing
from service.usecases import tasks as task_usecases
from service.usecases.views import AttemptView, EventView, LogView, TaskPublic


class TaskSummary(TaskPublic):
    """A task in a list. Params longer than the list's cap are left out (null) and flagged with
    paramsOmitted, so a page stays small however large params are; GET /tasks/{id} has them."""

    params: dict[str, Any] | None  # type: ignore[assignment]  # None: omitted, see paramsOmitted
    params_omitted: bool = False

    @classmethod
    def of_listed(cls, listed: Listed) -> TaskSummary:
        public = TaskPublic.fields_of(listed.task)
        if listed.params_omitted:
            public["params"] = None
        return cls.model_validate({**public, "params_omitted": listed.params_omitted})


@dataclass(frozen=True, slots=True)
class TaskPage:
    items: list[TaskSummary]
    total: int
    page: int
    page_size: int
    next_cursor: str | None


@tracing.traced("queries.list_tasks")
async def list_tasks(
    uow: UnitOfWork,
    caller: Caller,
    filters: TaskFilters,
    *,
    page: int,
    page_size: int,
    cursor: Cursor | None,
    params_cap: int,
) -> TaskPage:
    """Newest first; users see their own tasks, admins everyone's. Params longer than
    `params_cap` characters of JSON are left out of the items."""
    if not caller.sees_all:
        filters = replace(filters, owner=caller.user_id)
    listed, total, more = await TaskRepository(uow.session).page(
        filters,
        limit=page_size,
        offset=(page - 1) * page_size,
        cursor=cursor,
        params_cap=params_cap,
    )
    items = [TaskSummary.of_listed(item) for item in listed]
    next_cursor = Cursor(items[-1].created_at, items[-1].id).encode() if more else None
    return TaskPage(items, total, page, page_size, next_cursor)


@tracing.traced("queries.events")
async def events(uow: UnitOfWork, caller: Caller, task_id: UUID) -> list[EventView]:
    await task_usecases.get(uow, caller, task_id)
    records = await HistoryRepository(uow.session).events(task_id)
    return [EventView.model_validate(r) for r in records]


@tracing.traced("queries.logs")
async def logs(
    uow: UnitOfWork,
    caller: Caller,
    task_id: UUID,
    *,
    level: str | None,
    page: int,
    page_size: int,
) -> tuple[list[LogView], int]:
    await task_usecases.get(uow, caller, task_id)
    records, total = await HistoryRepository(uow.session).logs(
        task_id, min_level=level, limit=page_size, offset=(page - 1) * page_size
    )
    return [LogView.model_validate(r) for r in records], total


@tracing.traced("queries.attempts")
async def attempts(uow: UnitOfWork, caller: Caller, task_id: UUID) -> list[AttemptView]:
    await task_usecases.get(uow, caller, task_id)
    records = await HistoryRepository(uow.session).attempts(task_id)
    return [AttemptView.model_validate(r) for r in records]
