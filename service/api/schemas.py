"""API request and response models (camelCase on the wire, snake_case accepted)."""

from __future__ import annotations

import functools
from dataclasses import replace
from datetime import datetime
from typing import Any, Literal, Self

from pydantic import ConfigDict, Field, ModelWrapValidatorHandler, field_validator, model_validator

from service.api import fields
from service.catalog.notifications import NotificationSettings
from service.domain.tasks import Priority, Queue
from service.usecases.queries import TaskSummary
from service.usecases.submissions import Submitted
from service.usecases.tasks import NewTask
from service.usecases.views import AttemptView, CamelModel, EventView, LogView, TaskPublic

__all__ = ["TaskCreated", "TaskPublic"]

EventPublic = EventView
LogPublic = LogView
AttemptPublic = AttemptView


@functools.cache
def _aliases_of(model: type[CamelModel]) -> tuple[tuple[str, str], ...]:
    """(name, alias) of a model's fields spelt two ways; once per model, not per request."""
    return tuple((n, f.alias) for n, f in model.model_fields.items() if f.alias not in (None, n))


class InputModel(CamelModel):
    """A request body or query. Unknown fields, a field sent under both its spellings, and what
    PostgreSQL cannot store are refused, each naming its field, so both databases agree."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="wrap")
    @classmethod
    def _one_spelling(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        if isinstance(data, dict):
            fields.fail(
                fields.error(
                    (alias,), "duplicate_field", f"is sent twice, as {alias} and {name}", data[name]
                )
                for name, alias in cls._aliases()
                if name in data and alias in data
            )
        return handler(data)

    @classmethod
    def _aliases(cls) -> tuple[tuple[str, str], ...]:
        return _aliases_of(cls)

    @field_validator("*")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        fields.check_storable(value)
        return value


class TaskSpec(InputModel):
    """A new task without an input file to upload (a batch's item)."""

    task_type: fields.Name = Field(description="What to do, e.g. import, export, sleep")
    entity_type: fields.Name | None = Field(None, description="What it works on, e.g. product")
    priority: Literal["low", "normal", "high", "urgent"] | None = Field(
        None, description="Claim order in its queue; default: the task type's (GET /task-types)"
    )
    queue: Literal["default", "urgent", "bulk"] | None = None
    params: fields.Params = Field(default_factory=dict)
    input_file_id: str | None = Field(None, max_length=255)
    scheduled_at: fields.Instant | None = Field(None, description="Run at this time")
    max_retries: fields.Retries | None = None
    template_id: str | None = Field(None, max_length=64)
    name: fields.Title | None = Field(None, description="A title people know it by")
    description: fields.Description | None = None
    tags: fields.Tags = Field(default_factory=list, description="Labels to filter by (tag=)")
    notification_settings: NotificationSettings | None = Field(
        None, description="Who is told when it ends, and how"
    )

    _tags = field_validator("tags")(fields.unique_tags)

    def as_new_task(self) -> NewTask:
        """What the create use case takes."""
        return NewTask(
            task_type=self.task_type,
            entity_type=self.entity_type,
            priority=None if self.priority is None else Priority.parse(self.priority),
            queue=Queue(self.queue) if self.queue else None,
            params=self.params,
            input_file_id=self.input_file_id,
            scheduled_at=self.scheduled_at,
            max_retries=self.max_retries,
            template_id=self.template_id,
            name=self.name,
            description=self.description,
            tags=tuple(self.tags),
            notification_settings=(
                None if self.notification_settings is None else self.notification_settings.stored()
            ),
        )


class TaskCreate(TaskSpec):
    """A new task; with a fileName, the answer says where to upload its input file."""

    file_name: fields.FileName | None = None
    file_size: fields.ByteSize | None = None
    file_content_type: fields.ContentType | None = None
    file_sha256: fields.Sha256 | None = None

    def as_new_task(self) -> NewTask:
        return replace(
            super().as_new_task(),
            file_name=self.file_name,
            file_size=self.file_size,
            file_content_type=self.file_content_type,
            file_sha256=None if self.file_sha256 is None else self.file_sha256.lower(),
        )


class TaskCreated(TaskPublic):
    """The new task; with a fileName, also where to PUT the input file (uploadUrl)."""

    upload_url: str | None = None
    upload_headers: dict[str, str] | None = None
    upload_expires_at: datetime | None = None

    @classmethod
    def of_submitted(cls, submitted: Submitted) -> TaskCreated:
        public = TaskPublic.fields_of(submitted.task)
        upload = submitted.upload
        if upload is not None:
            public["upload_url"] = upload.upload_url
            public["upload_headers"] = upload.upload_headers
            public["upload_expires_at"] = upload.expires_at
        return cls.model_validate(public)


class ProgressReport(InputModel):
    """Progress from an executor; omitted fields stay as they are. processedItems may not pass
    totalItems (as sent, or as stored)."""

    progress: fields.Percent | None = None
    total_items: fields.Count | None = None
    processed_items: fields.Count | None = None
    succeeded_items: fields.Count | None = None
    failed_items: fields.Count | None = None
    message: str | None = Field(None, max_length=2000)


class ProgressAck(CamelModel):
    status: str
    progress: int
    cancel_requested: bool


class TaskPage(CamelModel):
    items: list[TaskSummary]
    total: int
    page: int
    page_size: int
    next_cursor: str | None


class LogPage(CamelModel):
    items: list[LogPublic]
    total: int
    page: int
    page_size: int
