"""Read shapes shared by the API responses and the event payloads (camelCase on the wire)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from service.domain.tasks import Priority, TaskStatus
from service.wire import CamelModel

__all__ = ["AttemptView", "CamelModel", "EventView", "LogView", "TaskView"]


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
    #: automatic retries since a person last started it: maxRetries bounds these
    auto_retries: int = 0
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
        """A view of a tasks row, without pydantic validation.

        The row is trusted (our own table, typed by its columns: aware datetimes, dicts, ints,
        bools), so validating its 37 fields on every claim, finish and read only cost CPU. The
        few values validation would have converted are converted here: the priority number to
        its label, the status to TaskStatus, the id to uuid.UUID (drivers may hand their own
        UUID type). `snapshot()` and the API responses are the same as with model_validate.
        """
        data = {name: row[name] for name in _TASK_FIELDS if name in row}
        missing = _TASK_REQUIRED - data.keys()
        if missing:  # not a whole tasks row: let validation explain what is wrong
            plain = dict(row)
            plain["priority"] = Priority(plain["priority"]).label
            return cls.model_validate(plain)
        data["priority"] = Priority(data["priority"]).label
        data["status"] = TaskStatus(data["status"])
        task_id = data["id"]
        if type(task_id) is not UUID:
            data["id"] = UUID(str(task_id))
        return cls.model_construct(**data)

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready camelCase dict: the `data` of the task's CloudEvents."""
        return self.model_dump(mode="json", by_alias=True)


_TASK_FIELDS = tuple(TaskView.model_fields)
_TASK_REQUIRED = frozenset(n for n, f in TaskView.model_fields.items() if f.is_required())


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
