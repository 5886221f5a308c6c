"""The AsyncAPI 3.0 document of what the service publishes and consumes, built from the code.

Topics come from the enums of service.domain.events (every member is a topic: the outbox row's
topic and the CloudEvent type), the worker's subscriptions (the doorbells and the dead-letter
topic) and the maintenance jobs (Dapr cron input bindings). Payload schemas come from the
pydantic models the events are made of (TaskPublic: `snapshot()`), so a new field or a new
topic shows up without editing this file — except its description, which
tests/unit/api/test_asyncapi.py asks for in DESCRIPTIONS.
"""

from __future__ import annotations

import enum
import functools
import re
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from service import __version__
from service.domain import events
from service.domain.events import (
    DEAD_LETTER_TOPIC,
    DOORBELLS,
    SOURCE,
    EventType,
    NotificationEventType,
    QueueEventType,
    ScheduleEventType,
    SettingsEventType,
)
from service.domain.jobs import JOBS
from service.events.cloudevents import CONTENT_TYPE
from service.usecases.schedule_views import SchedulePublic
from service.usecases.views import CamelModel, TaskPublic

#: One line per topic: what happened when it is sent. A topic without one fails the test.
DESCRIPTIONS: dict[str, str] = {
    EventType.CREATED: (
        "A task is ready to run: just created, due after its scheduledAt, or its input file "
        "arrived. The work trigger: workers subscribe and claim the task from the database."
    ),
    EventType.SCHEDULED: "A task was created with a future scheduledAt; it waits until then.",
    EventType.WAITING: "A task was created with a fileName; it waits for its input upload.",
    EventType.STARTED: "A worker claimed the task (status processing); `workerId` says which.",
    EventType.PROGRESS: (
        "The task's progress or counts changed (throttled: at most one per progress interval)."
    ),
    EventType.COMPLETED: "The task finished successfully; outputs are in the snapshot.",
    EventType.FAILED: "The task gave up (retries exhausted or a non-retryable error).",
    EventType.CANCELLED: "The task was stopped on request.",
    EventType.RETRIED: (
        "The task went back to pending after a failure (automatically, with backoff, or by a "
        "person). Also a work trigger for the workers."
    ),
    EventType.DELETED: "The task was deleted softly (hidden from lists; kept for history).",
    EventType.CANCEL_REQUESTED: (
        "Cancelling was asked while the task runs; its handler stops at its next check."
    ),
    EventType.UPDATED: (
        "A waiting, scheduled or pending task was edited (PATCH /tasks/{id}): name, tags, "
        "params, priority, scheduledAt, maxRetries or notification settings."
    ),
    ScheduleEventType.CREATED: "A recurring schedule was made; `data` is the schedule.",
    ScheduleEventType.UPDATED: "A schedule's fields changed; `data` is the schedule as it is now.",
    ScheduleEventType.PAUSED: (
        "A schedule stopped firing: paused by its owner, or by itself (`pausedReason`) when "
        "its task type or template became invalid."
    ),
    ScheduleEventType.RESUMED: "A paused schedule fires again, from now on.",
    ScheduleEventType.DELETED: "A schedule was deleted; the tasks it made stay.",
    ScheduleEventType.FIRED: (
        "A fire time of a schedule was handled: the task it made (`taskId`), or why none "
        "(`outcome`: skipped while the last run is unfinished, queued, …)."
    ),
    NotificationEventType.REQUESTED: (
        "A task asked to be told about its end (or a progress milestone) through the `event` "
        "channel: for the platform's notification service, with recipients, templateKey, a "
        "title and body, and the task's snapshot."
    ),
    SettingsEventType.CHANGED: (
        "A settings key (the CloudEvent subject) saved a new version: who, when, its ETag and "
        "the changed paths (secrets masked). Every API replica drops its cached copy."
    ),
    QueueEventType.PAUSED: (
        "An admin paused a queue (`queue`, `actor`, `at`): workers stop claiming from it; "
        "running tasks finish."
    ),
    QueueEventType.RESUMED: "An admin resumed a paused queue: workers claim from it again.",
    DEAD_LETTER_TOPIC: (
        "A delivery of a work trigger that Dapr gave up on (retries exhausted or dropped), "
        "as Dapr dead-lettered it. The worker records it (GET /api/v1/operations/dead-letters)."
    ),
}


#: The payload (`data`) of topics that are not task events; a task event carries TaskPublic.
class ScheduleFired(CamelModel):
    """The `data` of operations.schedule.fired (service/usecases/firing.py)."""

    schedule_id: UUID
    fire_time: datetime
    outcome: str
    task_id: UUID | None


class NotificationRequested(CamelModel):
    """The `data` of operations.notification.requested (service/usecases/notifications.py)."""

    reason: str = Field(description="completed, failed, cancelled or progress")
    milestone: int | None = Field(description="the progress percentage, for a milestone")
    template_key: str | None = Field(description="the notification service's message template")
    title: str
    body: str
    recipients: list[str] = Field(
        description="user ids: the settings' recipients, or the submitter"
    )
    task: TaskPublic


class SettingsChanged(CamelModel):
    """The `data` of settings.changed (service/usecases/settings.py)."""

    key: str
    version: int
    etag: str
    changed_at: datetime
    changed_by: str
    changes: list[Any] = Field(description="the changed paths with old and new values")


class QueueChanged(CamelModel):
    """The `data` of operations.queue.paused and .resumed (service/usecases/queues.py)."""

    queue: str
    action: str = Field(description="paused or resumed")
    actor: str
    at: datetime


PAYLOADS: dict[str, type[BaseModel]] = {
    QueueEventType.PAUSED: QueueChanged,
    QueueEventType.RESUMED: QueueChanged,
    SettingsEventType.CHANGED: SettingsChanged,
    **{str(t): SchedulePublic for t in ScheduleEventType if t is not ScheduleEventType.FIRED},
    ScheduleEventType.FIRED: ScheduleFired,
    NotificationEventType.REQUESTED: NotificationRequested,
}

_SCHEMAS = "#/components/schemas/"


def topic_enums() -> list[type[enum.StrEnum]]:
    """Every enum of topics in service.domain.events (EventType and any added beside it)."""
    return [
        value
        for value in vars(events).values()
        if isinstance(value, type) and issubclass(value, enum.StrEnum) and value is not enum.StrEnum
    ]


def published_topics() -> list[str]:
    """Every topic the service can write to its outbox."""
    return [str(member) for kind in topic_enums() for member in kind]


def consumed_topics() -> list[str]:
    """Every topic the worker subscribes to (see worker/subscriptions.py)."""
    return [*sorted(str(t) for t in DOORBELLS), DEAD_LETTER_TOPIC]


def key(name: str) -> str:
    """A component or channel id (AsyncAPI keys allow letters, digits, `.`, `-`, `_`)."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", name)


def payload_model(topic: str) -> type[BaseModel]:
    return PAYLOADS.get(topic, TaskPublic)


def model_schemas(*models: type[BaseModel]) -> dict[str, Any]:
    """JSON Schemas of the models as they are sent (camelCase, serialization), with the models
    they refer to, each under its name (refs point into components/schemas)."""
    found: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(
            by_alias=True, mode="serialization", ref_template=_SCHEMAS + "{model}"
        )
        found.update(schema.pop("$defs", {}))
        found[model.__name__] = schema
    return found


def cloud_event_schema() -> dict[str, Any]:
    """The structured CloudEvents 1.0 envelope the relay sends (service/events/cloudevents.py);
    Dapr adds its own attributes (topic, pubsubname, traceid …) on delivery."""
    return {
        "type": "object",
        "description": "A structured CloudEvent 1.0 (Content-Type application/cloudevents+json)",
        "required": ["id", "source", "specversion", "type"],
        "properties": {
            "id": {"type": "string", "description": "the outbox row id: stable across re-sends"},
            "source": {"type": "string", "const": SOURCE},
            "specversion": {"type": "string", "const": "1.0"},
            "type": {"type": "string", "description": "the topic name"},
            "subject": {"type": "string", "description": "the task id"},
            "time": {"type": "string", "format": "date-time"},
            "datacontenttype": {"type": "string", "const": "application/json"},
            "traceparent": {"type": "string", "description": "W3C trace context of the change"},
            "data": {"description": "the payload"},
        },
        "additionalProperties": True,
    }


def _message(topic: str, address: str, description: str, data: dict[str, Any] | None) -> Any:
    envelope: dict[str, Any] = {"$ref": _SCHEMAS + "CloudEvent"}
    payload: dict[str, Any] = envelope
    if data is not None:
        payload = {
            "allOf": [
                envelope,
                {
                    "type": "object",
                    "required": ["data"],
                    "properties": {"type": {"const": topic}, "data": data},
                },
            ]
        }
    return {
        "name": topic,
        "title": topic,
        "summary": description,
        "contentType": CONTENT_TYPE,
        "payload": payload,
    }


def _operation(action: str, channel: str, message: str, description: str) -> dict[str, Any]:
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "messages": [{"$ref": f"#/channels/{channel}/messages/{message}"}],
        "description": description,
    }


_SEND = (
    "Written to the outbox in the transaction of the change it announces (API or worker); the "
    "relay publishes it through the Dapr sidecar right after the commit, a sweep resends what "
    "is left. At least once: deduplicate by the CloudEvent id."
)
_RECEIVE = (
    "The worker subscribes through GET /dapr/subscribe; created events are routed by CEL rules "
    "on data.taskType / data.entityType to /events/routed/…, unknown types to /events/unrouted."
)


@functools.cache
def document(topic_prefix: str = "", pubsub: str = "pubsub") -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document; addresses carry the deployment's topic prefix."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {"CloudEvent": cloud_event_schema()}
    published = published_topics()
    models = {payload_model(t) for t in published}
    schemas.update(model_schemas(*sorted(models, key=lambda m: m.__name__)))

    def channel(topic: str, address: str, description: str, data: dict[str, Any] | None) -> str:
        cid = key(topic)
        messages[cid] = _message(topic, address, description, data)
        channels[cid] = {
            "address": address,
            "title": topic,
            "description": description,
            "messages": {cid: {"$ref": f"#/components/messages/{cid}"}},
        }
        return cid

    for topic in published:
        data = {"$ref": _SCHEMAS + payload_model(topic).__name__}
        cid = channel(topic, topic_prefix + topic, DESCRIPTIONS.get(topic, ""), data)
        operations[f"send-{cid}"] = _operation("send", cid, cid, _SEND)
    for topic in consumed_topics():
        cid = key(topic)
        if cid not in channels:  # the dead-letter topic: Dapr publishes it, not us
            channel(topic, topic_prefix + topic, DESCRIPTIONS.get(topic, ""), None)
        operations[f"receive-{cid}"] = _operation("receive", cid, cid, _RECEIVE)
    for job in JOBS:
        cid = key(f"cron-{job.name}")
        description = (
            f"Dapr cron input binding cron-{job.name} (every {job.slot_seconds} s): daprd "
            f"POSTs an empty JSON body to /jobs/{job.name} on the worker, which runs the "
            "maintenance job once per tick across replicas. In embedded mode the in-process "
            "scheduler runs it instead."
        )
        messages[cid] = {
            "name": f"cron-{job.name}",
            "title": f"cron-{job.name} tick",
            "contentType": "application/json",
            "payload": {"type": "object"},
        }
        channels[cid] = {
            "address": f"/jobs/{job.name}",
            "title": f"cron-{job.name}",
            "description": description,
            "messages": {cid: {"$ref": f"#/components/messages/{cid}"}},
        }
        operations[f"receive-{cid}"] = _operation("receive", cid, cid, description)
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Common-Operations events",
            "version": __version__,
            "description": (
                "Every topic the service publishes (task lifecycle events through the "
                "transactional outbox) and consumes (the work triggers, the dead-letter "
                "topic, the cron bindings). Each event is a structured CloudEvent 1.0 whose "
                "`type` is the topic and whose `data` is the payload (for task events the "
                "task snapshot, as GET /tasks/{id} shows it)."
            ),
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "dapr": {
                "host": "localhost:3500",
                "protocol": "http",
                "description": (
                    f"The Dapr sidecar's pub/sub component `{pubsub}` (Redis Streams locally, "
                    "any Dapr pub/sub in production)."
                ),
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }
