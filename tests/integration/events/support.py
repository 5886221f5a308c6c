"""Outbox rows for the relay's tests: rows without a task, ordered by subject and version."""

from __future__ import annotations

from typing import Any

from service.bootstrap import Resources
from service.clock import utcnow
from service.db.repositories.outbox import NewOutboxRow, OutboxRecord, OutboxRepository
from service.events.base import OutgoingEvent, PublishError


class Refusing:
    """A broker that accepts every event but those of `refuse` (subject, version), recording
    what it accepted in order; `max_in_flight` keys in parallel (with 1, the first refusal
    stops every key)."""

    kind = "test"
    crosses_processes = False

    def __init__(self, refuse: set[tuple[str, int]] | None = None, max_in_flight: int = 1):
        self.refuse = refuse or set()
        self.max_in_flight = max_in_flight
        self.accepted: list[tuple[str | None, Any]] = []

    async def publish(self, event: OutgoingEvent) -> None:
        if (event.subject, event.data["version"]) in self.refuse:
            raise PublishError("refused")
        self.accepted.append((event.subject, event.data["version"]))

    async def healthy(self) -> bool:
        return True

    async def close(self) -> None:
        return None


def row(subject: str, version: int) -> NewOutboxRow:
    """A settings.changed row of `subject` (its ordering key), at `version`."""
    payload = {"key": subject, "version": version}
    return NewOutboxRow("settings.changed", None, payload, utcnow(), subject=subject)


async def add(resources: Resources, *rows: NewOutboxRow) -> list[OutboxRecord]:
    """Commit `rows` in one transaction, as another process would."""
    async with resources.unit() as uow:
        return await OutboxRepository(uow.session).add(rows)
