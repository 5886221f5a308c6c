"""Dead letters: record what Dapr gave up on, so nothing is lost silently, and list them."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from service.db.repositories.dead_letters import DeadLetterRepository
from service.db.unit_of_work import UnitOfWork
from service.domain.callers import Caller
from service.domain.errors import Forbidden
from service.usecases.views import CamelModel


class DeadLetterView(CamelModel):
    id: int
    event_id: str
    event_type: str | None
    topic: str | None
    task_id: UUID | None
    payload: dict[str, Any]
    received_at: datetime


async def record(
    uow: UnitOfWork, event: dict[str, Any], *, topic: str | None, now: datetime
) -> bool:
    """Store a dead-lettered CloudEvent once per event id."""
    data = event.get("data")
    subject = event.get("subject")
    task_id = None
    for candidate in (data.get("id") if isinstance(data, dict) else None, subject):
        try:
            task_id = UUID(str(candidate)) if candidate else None
        except ValueError:
            continue
        if task_id:
            break
    return await DeadLetterRepository(uow.session).add(
        {
            "event_id": str(event.get("id") or f"unknown-{now.timestamp()}"),
            "event_type": event.get("type"),
            "topic": topic,
            "task_id": task_id,
            "payload": event,
            "received_at": now,
        }
    )


async def latest(
    uow: UnitOfWork, caller: Caller, *, limit: int, offset: int
) -> list[DeadLetterView]:
    if not caller.sees_all:
        raise Forbidden("only admins can read dead letters")
    records = await DeadLetterRepository(uow.session).latest(limit, offset)
    return [DeadLetterView.model_validate(r) for r in records]
