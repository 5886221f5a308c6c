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
    UPDATED = "operations.task.updated"  #: a person changed it before it ran (PATCH)

    @property
    def short(self) -> str:
        return self.value.rsplit(".", 1)[1]


#: Events that mean "a task may be ready to claim" to a worker.
DOORBELLS = frozenset({EventType.CREATED, EventType.RETRIED})


class ScheduleEventType(enum.StrEnum):
    """Events a recurring schedule emits; their subject (and relay ordering key) is its id."""

    CREATED = "operations.schedule.created"  #: a schedule was made
    UPDATED = "operations.schedule.updated"  #: its fields changed
    PAUSED = "operations.schedule.paused"  #: by its owner, or by itself (pausedReason)
    RESUMED = "operations.schedule.resumed"  #: fires again from now on
    DELETED = "operations.schedule.deleted"  #: gone (its tasks stay)
    FIRED = "operations.schedule.fired"  #: a fire time: the task it made, or why none


class NotificationEventType(enum.StrEnum):
    """A task's notification for the platform's notification service (the `event` channel of
    its notificationSettings); not a task lifecycle event, so not an EventType."""

    REQUESTED = "operations.notification.requested"


NOTIFICATION_REQUESTED = NotificationEventType.REQUESTED


#: Where Dapr puts a delivery of a doorbell it gave up on; the worker records what lands there.
DEAD_LETTER_TOPIC = "operations.deadletter"


class SettingsEventType(enum.StrEnum):
    """A settings key saved a new version (its subject is the key; replicas drop their cache)."""

    CHANGED = "settings.changed"


class QueueEventType(enum.StrEnum):
    """An admin paused or resumed a queue (claims skip a paused queue; running tasks finish)."""

    PAUSED = "operations.queue.paused"
    RESUMED = "operations.queue.resumed"
