"""CloudEvents 1.0: outbox rows go out as structured events; deliveries come in as doorbells."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from service.domain.events import SOURCE
from service.events.base import OutgoingEvent

CONTENT_TYPE = "application/cloudevents+json"


def to_structured_body(event: OutgoingEvent, *, event_type: str | None = None) -> bytes:
    """Our id, type, source, subject and time; `data` is the task snapshot as JSON."""
    attributes: dict[str, Any] = {
        "id": event.id,
        "type": event_type or event.topic,
        "source": SOURCE,
        "time": event.time.isoformat(),
        "datacontenttype": "application/json",
    }
    if event.subject:
        attributes["subject"] = event.subject
    if event.traceparent:
        attributes["traceparent"] = event.traceparent
    # the SDK only where events go out through Dapr (the in-process bus never formats one)
    from cloudevents.conversion import to_structured
    from cloudevents.http import CloudEvent

    _, body = to_structured(CloudEvent(attributes, event.data))
    return body if isinstance(body, bytes) else str(body).encode()


@dataclass(frozen=True, slots=True)
class Doorbell:
    """What a delivered task event tells a worker: which task, of which type."""

    event_id: str
    event_type: str
    task_id: UUID
    task_type: str
    entity_type: str | None
    available_at: str | None


class PoisonEvent(ValueError):
    """The delivery cannot be understood; retrying it would not help."""


def doorbell_from(body: Any) -> Doorbell:
    """Read a Dapr delivery (a structured CloudEvent whose data is a task snapshot)."""
    if not isinstance(body, dict):
        raise PoisonEvent("the body is not a JSON object")
    data = body.get("data")
    if not isinstance(data, dict):
        raise PoisonEvent("the event has no JSON object in `data`")
    try:
        task_id = UUID(str(data["id"]))
        task_type = str(data["taskType"])
    except (KeyError, ValueError) as error:
        raise PoisonEvent(f"the task snapshot lacks a valid id or taskType: {error}") from error
    entity = data.get("entityType")
    return Doorbell(
        event_id=str(body.get("id", "")),
        event_type=str(body.get("type", "")),
        task_id=task_id,
        task_type=task_type,
        entity_type=str(entity) if entity is not None else None,
        available_at=data.get("availableAt"),
    )
