"""Task values: statuses, priorities, queues and the snapshot the rules work on."""

from __future__ import annotations

import enum
from dataclasses import dataclass
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
