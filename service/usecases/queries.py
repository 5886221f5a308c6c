"""Read models: task lists with filters and paging, event history, logs and attempts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from service.db.repositories.history import HistoryRepository
from service.db.repositories.tasks import Cursor, TaskFilters, TaskRepository
from service.domain.callers import Caller
from service.usecases import tasks as task_usecases
from service.usecases.views import AttemptView, EventView, LogView, TaskView


class TaskSummary(TaskView):
    """A task in a list. Params longer than the list's cap are left out (null) and flagged with
    paramsOmitted, so a page stays small however large params are; GET /tasks/{id} has them."""

    params: dict[str, Any] | None  # type: ignore[assignment]  # None: omitted, see paramsOmitted
    params_omitted: bool = False

    @classmethod
    def from_listed(cls, row: Mapping[Any, Any]) -> TaskSummary:
        task = TaskView.from_row(row)
        return cls.model_construct(**dict(task), params_omitted=bool(row["params_omitted"]))


@dataclass(frozen=True, slots=True)
class TaskPage:
    items: list[TaskSummary]
    total: int
    page: int
    page_size: int
    next_cursor: str | None


async def list_tasks(
    session: AsyncSession,
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
    rows, total, more = await TaskRepository(session).page(
        filters,
        limit=page_size,
        offset=(page - 1) * page_size,
        cursor=cursor,
        params_cap=params_cap,
    )
    items = [TaskSummary.from_listed(r._mapping) for r in rows]
    next_cursor = Cursor(items[-1].created_at, items[-1].id).encode() if more else None
    return TaskPage(items, total, page, page_size, next_cursor)


async def events(session: AsyncSession, caller: Caller, task_id: UUID) -> list[EventView]:
    await task_usecases.get(session, caller, task_id)
    rows = await HistoryRepository(session).events(task_id)
    return [EventView.model_validate(r._mapping) for r in rows]


async def logs(
    session: AsyncSession,
    caller: Caller,
    task_id: UUID,
    *,
    level: str | None,
    page: int,
    page_size: int,
) -> tuple[list[LogView], int]:
    await task_usecases.get(session, caller, task_id)
    rows, total = await HistoryRepository(session).logs(
        task_id, min_level=level, limit=page_size, offset=(page - 1) * page_size
    )
    return [LogView.model_validate(r._mapping) for r in rows], total


async def attempts(session: AsyncSession, caller: Caller, task_id: UUID) -> list[AttemptView]:
    await task_usecases.get(session, caller, task_id)
    rows = await HistoryRepository(session).attempts(task_id)
    return [AttemptView.model_validate(r._mapping) for r in rows]
