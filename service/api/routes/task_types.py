"""/task-types: the catalog of task types, with each type's params as JSON Schema."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from service.api.deps import CallerDep, ResourcesDep
from service.usecases import task_types
from service.usecases.task_types import TaskTypeView
from service.web.problems import CALLER_RESPONSES, responses

router = APIRouter(prefix="/task-types", tags=["task types"], responses=CALLER_RESPONSES)


@router.get("", response_model=list[TaskTypeView])
async def list_task_types(caller: CallerDep, resources: ResourcesDep) -> list[TaskTypeView]:
    """Every task type POST /tasks accepts; `allowed` says whether the caller may create it."""
    return task_types.list_types(resources.catalog, caller)


@router.get("/{task_type}", response_model=TaskTypeView, responses=responses(404))
async def get_task_type(
    task_type: Annotated[str, Path(max_length=64)], caller: CallerDep, resources: ResourcesDep
) -> TaskTypeView:
    return task_types.get_type(resources.catalog, caller, task_type)
