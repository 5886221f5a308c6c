"""Lifecycle event names; each is also the pub/sub topic and the CloudEvent type."""

from __future__ import annotations

import enum

SOURCE = "common-operations"


class EventType(enum.StrEnum):
    """Events a task emits, one per state change (progress is throttled)."""

    CREATED = "operations.task.created"  #: ready to run: new, due, or the work trigger
    SCHEDULED = "operations.task.scheduled"  #: created with a future scheduledAt
    WAITING = "operations.task.waiting"  #: created; waits for its input file
    STARTED = "operations.task.started"  #: a worker claimed it
    PROGRESS = "operations.task.progress"  #: progress or counts changed (throttled)
    COMPLETED = "operations.task.completed"  #: finished successfully
    FAILED = "operations.task.failed"  #: gave up
    CANCELLED = "operations.task.cancelled"  #: stopped on request
    RETRIED = "operations.task.retried"  #: back to pending after a failure or by hand
    DELETED = "operations.task.deleted"  #: soft-deleted
    CANCEL_REQUESTED = "operations.task.cancel_requested"  #: cancel asked while running

    @property
    def short(self) -> str:
        return self.value.rsplit(".", 1)[1]


#: Events that mean "a task may be ready to claim" to a worker.
DOORBELLS = frozenset({EventType.CREATED, EventType.RETRIED})

#: Where Dapr puts a delivery of a doorbell it gave up on; the worker records what lands there.
DEAD_LETTER_TOPIC = "operations.deadletter"
