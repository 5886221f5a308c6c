"""Read shapes shared by the API responses and the event payloads (camelCase on the wire)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from service.domain.tasks import Priority, TaskStatus


class CamelModel(BaseModel):
    """camelCase out, camelCase or snake_case in."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


class TaskView(CamelModel):
    """A task as its watchers see it."""

    id: UUID
    task_type: str
    entity_type: str | None
    status: TaskStatus
    priority: str
    queue: str
    requested_by: str
    params: dict[str, Any]
    result: dict[str, Any] | None = None
    file_name: str | None = None
    file_size: int | None = None
    input_file_id: str | None = None
    output_file_id: str | None = None
    progress: int
    total_items: int | None = None
    processed_items: int
    succeeded_items: int
    failed_items: int
    scheduled_at: datetime | None = None
    available_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    error_message: str | None = None
    retry_count: int
    max_retries: int
    attempts: int
    lease_until: datetime | None = None
    worker_id: str | None = None
    cancel_requested: bool
    idempotency_key: str | None = None
    template_id: str | None = None
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> TaskView:
        data = dict(row)
        data["priority"] = Priority(data["priority"]).label
        return cls.model_validate(data)

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready camelCase dict: the `data` of the task's CloudEvents."""
        return self.model_dump(mode="json", by_alias=True)


class EventView(CamelModel):
    id: int
    task_id: UUID
    event_type: str
    from_status: str | None
    to_status: str | None
    actor: str | None
    message: str | None
    created_at: datetime


class LogView(CamelModel):
    id: int
    task_id: UUID
    level: str
    message: str
    attempt: int | None
    data: dict[str, Any] | None
    created_at: datetime


class AttemptView(CamelModel):
    attempt: int
    worker_id: str
    dispatch: str
    outcome: str
    error: str | None
    started_at: datetime
    finished_at: datetime | None
    duration_ms: int | None
