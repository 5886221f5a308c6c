"""Outbox rows for the relay's tests: rows without a task, ordered by subject and version."""

from __future__ import annotations

from service.bootstrap import Resources
from service.clock import utcnow
from service.db.repositories.outbox import NewOutboxRow, OutboxRecord, OutboxRepository


def row(subject: str, version: int) -> NewOutboxRow:
    """A settings.changed row of `subject` (its ordering key), at `version`."""
    payload = {"key": subject, "version": version}
    return NewOutboxRow("settings.changed", None, payload, utcnow(), subject=subject)


async def add(resources: Resources, *rows: NewOutboxRow) -> list[OutboxRecord]:
    """Commit `rows` in one transaction, as another process would."""
    async with resources.unit() as uow:
        return await OutboxRepository(uow.session).add(rows)
