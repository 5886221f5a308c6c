"""/bulk: convenience spellings of import and export tasks (the older API's paths)."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, Response, status
from pydantic import Field

from service.api.deps import CallerDep, ResourcesDep, SessionDep
from service.api.problems import PROBLEM_RESPONSES
from service.api.routes import tasks as task_routes
from service.api.schemas import InputModel, TaskCreate, TaskPublic
from service.usecases import tasks as task_usecases

router = APIRouter(prefix="/bulk", tags=["bulk"], responses=PROBLEM_RESPONSES)

Entity = Literal["product", "customer", "order", "inventory"]
PriorityLabel = Literal["low", "normal", "high", "urgent"]


class BulkImport(InputModel):
    """An import: the answer carries the uploadUrl to PUT the file to."""

    entity_type: Entity
    file_name: str = Field(min_length=1, max_length=255)
    file_size: int | None = Field(None, ge=0)
    params: dict[str, Any] = Field(default_factory=dict)
    priority: PriorityLabel = "normal"


class BulkExport(InputModel):
    """An export; its file is the task's download once it completes."""

    entity_type: Entity
    params: dict[str, Any] = Field(default_factory=dict)
    priority: PriorityLabel = "normal"


@router.post("/import", status_code=status.HTTP_201_CREATED, response_model=task_routes.TaskCreated)
async def bulk_import(
    body: BulkImport,
    session: SessionDep,
    caller: CallerDep,
    resources: ResourcesDep,
    response: Response,
    idempotency_key: task_routes.IdempotencyKey = None,
) -> task_routes.TaskCreated:
    """Same as POST /tasks with taskType "import"."""
    create = TaskCreate(
        task_type="import",
        entity_type=body.entity_type,
        file_name=body.file_name,
        file_size=body.file_size,
        params=body.params,
        priority=body.priority,
    )
    return await task_routes.create_task(
        create, session, caller, resources, response, idempotency_key, None
    )


@router.post("/export", status_code=status.HTTP_201_CREATED, response_model=task_routes.TaskCreated)
async def bulk_export(
    body: BulkExport,
    session: SessionDep,
    caller: CallerDep,
    resources: ResourcesDep,
    response: Response,
    idempotency_key: task_routes.IdempotencyKey = None,
) -> task_routes.TaskCreated:
    """Same as POST /tasks with taskType "export"."""
    create = TaskCreate(
        task_type="export",
        entity_type=body.entity_type,
        params=body.params,
        priority=body.priority,
    )
    return await task_routes.create_task(
        create, session, caller, resources, response, idempotency_key, None
    )


@router.get("/operations/{task_id}", response_model=TaskPublic)
async def bulk_operation(task_id: UUID, session: SessionDep, caller: CallerDep) -> TaskPublic:
    """A task with its counts (processed, succeeded, failed items)."""
    return await task_usecases.get(session, caller, task_id)
