"""/tasks/{id}: events, logs, attempts, and the internal progress endpoint."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query

from service.api import fields
from service.api.deps import CallerDep, ResourcesDep, ServiceDep, UnitDep
from service.api.json_body import BoundedRoute
from service.api.schemas import AttemptPublic, EventPublic, LogPage, ProgressAck, ProgressReport
from service.clock import utcnow
from service.usecases import logs as log_usecases, progress as progress_usecases, queries
from service.web.problems import CALLER_RESPONSES, responses

router = APIRouter(
    prefix="/tasks/{task_id}",
    tags=["task history"],
    responses=CALLER_RESPONSES,
    route_class=BoundedRoute,
)


@router.get("/events", response_model=list[EventPublic], responses=responses(404))
async def task_events(task_id: UUID, uow: UnitDep, caller: CallerDep) -> list[EventPublic]:
    """Every state change of the task, oldest first."""
    return await queries.events(uow, caller, task_id)


@router.get("/logs", response_model=LogPage, responses=responses(404))
async def task_logs(
    task_id: UUID,
    uow: UnitDep,
    caller: CallerDep,
    level: Annotated[Literal["debug", "info", "warning", "error"] | None, Query()] = None,
    page: Annotated[fields.PageNumber, Query()] = 1,
    page_size: Annotated[int, Query(ge=1, le=500, alias="pageSize")] = 100,
) -> LogPage:
    """Log lines at `level` or above, oldest first."""
    items, total = await queries.logs(
        uow, caller, task_id, level=level, page=page, page_size=page_size
    )
    return LogPage(items=items, total=total, page=page, page_size=page_size)


@router.get("/attempts", response_model=list[AttemptPublic], responses=responses(404))
async def task_attempts(task_id: UUID, uow: UnitDep, caller: CallerDep) -> list[AttemptPublic]:
    """One row per execution attempt: worker, start, end, outcome, error."""
    return await queries.attempts(uow, caller, task_id)


@router.patch("/progress", response_model=ProgressAck, responses=responses(403, 404, 409, 413))
async def report_progress(
    task_id: UUID,
    body: ProgressReport,
    uow: UnitDep,
    caller: ServiceDep,
    resources: ResourcesDep,
) -> ProgressAck:
    """Internal: an executor reports progress; the answer says whether a cancel was requested."""
    now = utcnow()
    update = progress_usecases.ProgressUpdate(
        progress=body.progress,
        total_items=body.total_items,
        processed_items=body.processed_items,
        succeeded_items=body.succeeded_items,
        failed_items=body.failed_items,
    )
    task = await progress_usecases.report(
        uow,
        task_id,
        update,
        now=now,
        announce=True,
        announce_every=resources.settings.progress_interval_seconds,
    )
    if body.message:
        await log_usecases.append(
            uow, [log_usecases.LogEntry(task_id, "info", body.message, now, task.attempts)]
        )
    return ProgressAck(
        status=task.status.value, progress=task.progress, cancel_requested=task.cancel_requested
    )
