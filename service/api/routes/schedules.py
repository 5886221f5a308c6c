"""/schedules: recurring tasks — create, list, read, change, pause, resume, delete."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from service.api.deps import CallerDep, ResourcesDep, UnitDep
from service.api.json_body import BoundedRoute
from service.api.schedule_schemas import (
    ScheduleChange,
    ScheduleCreate,
    ScheduleListQuery,
    SchedulePage,
)
from service.clock import utcnow
from service.db.repositories.schedules import ScheduleFilters
from service.domain.schedules import ScheduleStatus
from service.usecases import schedules
from service.usecases.schedule_views import ScheduleDetail, SchedulePublic
from service.usecases.schedules import ScheduleSpec
from service.web.problems import CALLER_RESPONSES, responses

router = APIRouter(
    prefix="/schedules", tags=["schedules"], responses=CALLER_RESPONSES, route_class=BoundedRoute
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ScheduleDetail,
    responses=responses(403),
)
async def create_schedule(
    body: ScheduleCreate,
    uow: UnitDep,
    caller: CallerDep,
    resources: ResourcesDep,
    response: Response,
) -> ScheduleDetail:
    """Make a schedule owned by the caller; its tasks are made as the caller. The task it
    would make is checked as POST /tasks checks it (422 naming the field, 403 for a type the
    caller may not create)."""
    spec = ScheduleSpec(**body.spec_values())
    made = await schedules.create(uow, caller, spec, resources.schedule_makers, now=utcnow())
    response.headers["Location"] = f"/api/v1/operations/schedules/{made.id}"
    return await schedules.detail(uow, caller, made.id)


@router.get("", response_model=SchedulePage)
async def list_schedules(
    query: Annotated[ScheduleListQuery, Query()], uow: UnitDep, caller: CallerDep
) -> SchedulePage:
    """Newest first: the caller's own schedules (admins: everyone's, or one owner's)."""
    filters = ScheduleFilters(
        owner=query.owner,
        status=None if query.status is None else ScheduleStatus(query.status),
        task_type=query.task_type,
    )
    items, total = await schedules.page(
        uow, caller, filters, page=query.page, page_size=query.page_size
    )
    return SchedulePage(
        items=[SchedulePublic.of(s) for s in items],
        total=total,
        page=query.page,
        page_size=query.page_size,
    )


@router.get("/{schedule_id}", response_model=ScheduleDetail, responses=responses(404))
async def get_schedule(schedule_id: UUID, uow: UnitDep, caller: CallerDep) -> ScheduleDetail:
    """The schedule, its next five fire times (UTC and its zone) and its last runs."""
    return await schedules.detail(uow, caller, schedule_id)


@router.patch("/{schedule_id}", response_model=ScheduleDetail, responses=responses(403, 404))
async def change_schedule(
    schedule_id: UUID,
    body: ScheduleChange,
    uow: UnitDep,
    caller: CallerDep,
    resources: ResourcesDep,
) -> ScheduleDetail:
    """Change the fields sent; the result is checked as a new schedule would be."""
    await schedules.update(
        uow, caller, schedule_id, body.spec_values(), resources.schedule_makers, now=utcnow()
    )
    return await schedules.detail(uow, caller, schedule_id)


@router.post("/{schedule_id}/pause", response_model=ScheduleDetail, responses=responses(404))
async def pause_schedule(schedule_id: UUID, uow: UnitDep, caller: CallerDep) -> ScheduleDetail:
    """Stop firing until resumed (pausing a paused schedule changes nothing)."""
    await schedules.pause_by_request(uow, caller, schedule_id, now=utcnow())
    return await schedules.detail(uow, caller, schedule_id)


@router.post("/{schedule_id}/resume", response_model=ScheduleDetail, responses=responses(403, 404))
async def resume_schedule(
    schedule_id: UUID, uow: UnitDep, caller: CallerDep, resources: ResourcesDep
) -> ScheduleDetail:
    """Fire again from now on; one that paused itself is checked again first (422 while its
    task still cannot be made)."""
    await schedules.resume(uow, caller, schedule_id, resources.schedule_makers, now=utcnow())
    return await schedules.detail(uow, caller, schedule_id)


@router.delete("/{schedule_id}", status_code=status.HTTP_204_NO_CONTENT, responses=responses(404))
async def delete_schedule(schedule_id: UUID, uow: UnitDep, caller: CallerDep) -> Response:
    """The schedule goes; the tasks it made stay."""
    await schedules.delete(uow, caller, schedule_id, now=utcnow())
    return Response(status_code=status.HTTP_204_NO_CONTENT)
