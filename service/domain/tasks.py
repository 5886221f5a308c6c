"""Task values: statuses, priorities, queues and the snapshot the rules work on."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any
from uuid import UUID


class TaskStatus(enum.StrEnum):
    """Where a task is in its life."""

    WAITING = "waiting"  #: waits for its input file to be uploaded
    SCHEDULED = "scheduled"  #: waits for its scheduledAt
    PENDING = "pending"  #: ready to be claimed by a worker
    PROCESSING = "processing"  #: a worker holds its lease and runs it
    COMPLETED = "completed"  #: finished successfully (terminal)
    FAILED = "failed"  #: gave up; may be retried by hand
    CANCELLED = "cancelled"  #: stopped on request; may be retried by hand

    @property
    def is_finished(self) -> bool:
        return self in FINISHED


FINISHED = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})


class Priority(enum.IntEnum):
    """Claim order inside a queue: higher runs first."""

    LOW = 0  #: background work
    NORMAL = 1  #: the default
    HIGH = 2  #: ahead of normal work
    URGENT = 3  #: ahead of everything, runs in the urgent queue

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, label: str) -> Priority:
        return cls[label.upper()]


class Queue(enum.StrEnum):
    """Worker pools with their own concurrency limit."""

    DEFAULT = "default"  #: most work
    URGENT = "urgent"  #: urgent-priority tasks, never stuck behind bulk work
    BULK = "bulk"  #: long imports and exports


BULK_TASK_TYPES = frozenset({"import", "export"})


def queue_for(task_type: str, priority: Priority) -> Queue:
    """Default queue of a task when its creator names none."""
    if priority is Priority.URGENT:
        return Queue.URGENT
    if task_type in BULK_TASK_TYPES:
        return Queue.BULK
    return Queue.DEFAULT


@dataclass(frozen=True, slots=True)
class TaskKey:
    """What a handler is registered for."""

    task_type: str
    entity_type: str | None


TaskId = UUID


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """A task as stored: the one entity use cases, the worker and handlers pass around (the
    API answers with its wire shape, TaskPublic; events carry its snapshot)."""

    id: TaskId
    task_type: str
    entity_type: str | None
    status: TaskStatus
    priority: Priority
    queue: str
    requested_by: str
    params: dict[str, Any]
    result: dict[str, Any] | None
    file_name: str | None
    file_size: int | None
    input_file_id: str | None
    output_file_id: str | None
    report_file_id: str | None
    progress: int
    total_items: int | None
    processed_items: int
    succeeded_items: int
    failed_items: int
    scheduled_at: datetime | None
    available_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    error_message: str | None
    retry_count: int
    auto_retries: int
    max_retries: int
    attempts: int
    lease_until: datetime | None
    worker_id: str | None
    cancel_requested: bool
    progress_announced_at: datetime | None
    idempotency_key: str | None
    template_id: str | None
    template_version: int | None
    name: str | None
    description: str | None
    tags: list[str]
    schedule_id: str | None
    fire_time: datetime | None
    notification_settings: dict[str, Any] | None
    version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    #: W3C traceparent of the request that created it (its runs' spans continue that trace)
    traceparent: str | None = None


def _utc(moment: datetime | None) -> datetime | None:
    """Aware UTC, as the database hands datetimes back."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


#: What every new task starts with, whatever it was asked for: nothing has run yet (new_task;
#: the group commit's statement writes these as constants, service/db/repositories/tasks.py).
STARTING: Mapping[str, Any] = MappingProxyType(
    {
        "result": None,
        "output_file_id": None,
        "report_file_id": None,
        "progress": 0,
        "processed_items": 0,
        "succeeded_items": 0,
        "failed_items": 0,
        "started_at": None,
        "completed_at": None,
        "error_message": None,
        "retry_count": 0,
        "auto_retries": 0,
        "attempts": 0,
        "lease_until": None,
        "worker_id": None,
        "cancel_requested": False,
        "progress_announced_at": None,
        "version": 1,
        "deleted_at": None,
        "total_items": None,
    }
)


def new_task(
    *,
    task_id: TaskId,
    task_type: str,
    entity_type: str | None,
    status: TaskStatus,
    priority: Priority,
    queue: str,
    requested_by: str,
    params: dict[str, Any],
    max_retries: int,
    now: datetime,
    scheduled_at: datetime | None = None,
    file_name: str | None = None,
    file_size: int | None = None,
    input_file_id: str | None = None,
    idempotency_key: str | None = None,
    template_id: str | None = None,
    template_version: int | None = None,
    name: str | None = None,
    description: str | None = None,
    tags: list[str] | None = None,
    schedule_id: str | None = None,
    fire_time: datetime | None = None,
    notification_settings: dict[str, Any] | None = None,
    traceparent: str | None = None,
) -> TaskRecord:
    """A task as it is first stored: every other field at its starting value, so the record
    is the row that will be read back (datetimes in UTC)."""
    created = _utc(now)
    assert created is not None
    scheduled = _utc(scheduled_at)
    return TaskRecord(
        id=task_id,
        task_type=task_type,
        entity_type=entity_type,
        status=status,
        priority=priority,
        queue=queue,
        requested_by=requested_by,
        params=params,
        file_name=file_name,
        file_size=file_size,
        input_file_id=input_file_id,
        scheduled_at=scheduled,
        available_at=scheduled if status is TaskStatus.SCHEDULED and scheduled else created,
        max_retries=max_retries,
        idempotency_key=idempotency_key,
        template_id=template_id,
        template_version=template_version,
        name=name,
        description=description,
        tags=list(tags or ()),
        schedule_id=schedule_id,
        fire_time=_utc(fire_time),
        notification_settings=notification_settings,
        created_at=created,
        updated_at=created,
        traceparent=traceparent,
        **STARTING,
    )
