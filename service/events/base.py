"""The publisher port: how outbox rows leave the service."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from service.domain.errors import OperationsError


@dataclass(frozen=True, slots=True)
class OutgoingEvent:
    """One outbox row on its way out; `id` stays the same on every re-send."""

    id: str
    topic: str
    subject: str | None
    data: dict[str, Any]
    time: datetime
    traceparent: str | None = None


class PublishError(OperationsError):
    """The event could not be handed to the broker; it stays in the outbox."""


class Publisher(Protocol):
    kind: str
    #: how many events the relay may hand over at once (each task's events stay in order)
    max_in_flight: int
    #: whether events reach other processes (a broker) or only this process's subscribers
    crosses_processes: bool

    async def publish(self, event: OutgoingEvent) -> None:
        """Hand one event to the broker; raise PublishError when it was not accepted."""

    async def healthy(self) -> bool:
        """Whether the broker can take events right now."""

    async def close(self) -> None: ...
