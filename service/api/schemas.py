"""API request and response models (camelCase on the wire, snake_case accepted)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, field_validator

from service.usecases.views import AttemptView, CamelModel, EventView, LogView, TaskView

NAME = r"^[a-z][a-z0-9_.-]{0,63}$"
#: A file's name as people see it (the storage key is derived from it, sanitised): any text
#: but control characters, which would forge log lines and headers.
FileName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=255,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="The file's name, without control characters",
    ),
]

#: A media type as in a Content-Type header, parameters allowed ("text/csv; charset=utf-8").
ContentType = Annotated[
    str,
    Field(
        max_length=255,
        # RFC 6838 names; parameters in printable ASCII (the type becomes a header value)
        pattern=r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+( *;[ -~]{1,200})?$",
        description="The file's media type; the upload must send it as its Content-Type",
    ),
]
#: A SHA-256 the client announces: the uploaded bytes must hash to it (any case accepted).
Sha256 = Annotated[
    str,
    Field(
        pattern=r"^[0-9a-fA-F]{64}$",
        description="SHA-256 of the file's bytes, 64 hex digits; other bytes are refused",
    ),
]

TaskPublic = TaskView
EventPublic = EventView
LogPublic = LogView
AttemptPublic = AttemptView


def _check_storable(value: Any) -> None:
    """PostgreSQL stores no NUL character (text or JSONB) and no NaN/Infinity (not JSON)."""
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("must not contain NUL characters")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_storable(key)
            _check_storable(item)
    elif isinstance(value, list):
        for item in value:
            _check_storable(item)


class InputModel(CamelModel):
    """A request body or query: refuses what PostgreSQL cannot store, so both databases agree."""

    @field_validator("*")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        _check_storable(value)
        return value


class TaskCreate(InputModel):
    """A new task."""

    task_type: str = Field(pattern=NAME, description="What to do, e.g. import, export, sleep")
    entity_type: str | None = Field(
        None, pattern=NAME, description="What it works on, e.g. product"
    )
    priority: Literal["low", "normal", "high", "urgent"] | None = Field(
        None, description="Claim order in its queue; default: the task type's (GET /task-types)"
    )
    queue: Literal["default", "urgent", "bulk"] | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    file_name: FileName | None = None
    file_size: int | None = Field(None, ge=0)
    file_content_type: ContentType | None = None
    file_sha256: Sha256 | None = None
    input_file_id: str | None = Field(None, max_length=255)
    scheduled_at: AwareDatetime | None = Field(None, description="Run at this time (with a zone)")
    max_retries: int | None = Field(None, ge=0, le=20)
    template_id: str | None = Field(None, max_length=64)


class ProgressReport(InputModel):
    """Progress from an executor; omitted fields stay as they are."""

    progress: int | None = Field(None, ge=0, le=100)
    total_items: int | None = Field(None, ge=0)
    processed_items: int | None = Field(None, ge=0)
    succeeded_items: int | None = Field(None, ge=0)
    failed_items: int | None = Field(None, ge=0)
    message: str | None = Field(None, max_length=2000)


class ProgressAck(CamelModel):
    status: str
    progress: int
    cancel_requested: bool


class TaskPage(CamelModel):
    items: list[TaskPublic]
    total: int
    page: int
    page_size: int
    next_cursor: str | None


class LogPage(CamelModel):
    items: list[LogPublic]
    total: int
    page: int
    page_size: int


class Health(CamelModel):
    status: str
    service: str = "common-operations"
    version: str
    checks: dict[str, Any] = Field(default_factory=dict)
    time: datetime | None = None
