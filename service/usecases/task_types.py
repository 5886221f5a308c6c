"""The task-type catalog as callers see it: what each type takes, so forms can be built."""

from __future__ import annotations

from typing import Any

from service.catalog.catalog import Catalog
from service.catalog.model import TaskType
from service.domain.callers import Caller
from service.domain.errors import NotFound
from service.wire import CamelModel


class TaskTypeView(CamelModel):
    """One task type: its params as JSON Schema, where it runs and how its runs are bounded."""

    task_type: str
    summary: str
    #: null: entityType is an optional free label
    entity_types: list[str] | None
    entity_type_required: bool
    queue: str
    priority: str
    max_retries: int
    execution_timeout_seconds: float
    heartbeat_timeout_seconds: float
    required_role: str | None
    #: whether the caller may create tasks of this type
    allowed: bool
    needs_file: bool
    non_retryable_errors: list[str]
    params_schema: dict[str, Any]


def _error_name(error: type[BaseException]) -> str:
    module = error.__module__
    return error.__qualname__ if module == "builtins" else f"{module}.{error.__qualname__}"


def _view(catalog: Catalog, task_type: TaskType, caller: Caller) -> TaskTypeView:
    name = task_type.name
    return TaskTypeView(
        task_type=name,
        summary=task_type.summary,
        entity_types=None if task_type.entity_types is None else list(task_type.entity_types),
        entity_type_required=task_type.entity_types is not None,
        queue=task_type.queue.value,
        priority=task_type.priority.label,
        max_retries=catalog.max_retries(name),
        execution_timeout_seconds=catalog.execution_timeout(name),
        heartbeat_timeout_seconds=catalog.heartbeat_timeout(name),
        required_role=task_type.role,
        allowed=caller.has_role(task_type.role),
        needs_file=task_type.needs_file,
        non_retryable_errors=[_error_name(e) for e in task_type.non_retryable],
        params_schema=task_type.params.model_json_schema(by_alias=True),
    )


def list_types(catalog: Catalog, caller: Caller) -> list[TaskTypeView]:
    """Every type, by name."""
    return [_view(catalog, t, caller) for t in catalog]


def get_type(catalog: Catalog, caller: Caller, name: str) -> TaskTypeView:
    found = catalog.get(name)
    if found is None:
        raise NotFound(f"task type {name!r} not found")
    return _view(catalog, found, caller)
