"""Queries on dead letters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db import dialects
from service.db.tables import dead_letters_table as D


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    """An event the broker gave up delivering, as it landed."""

    id: int
    event_id: str
    event_type: str | None
    topic: str | None
    task_id: UUID | None
    payload: dict[str, Any]
    received_at: datetime


class DeadLetterRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, values: dict[str, Any]) -> bool:
        """Record one; False when that event id was already recorded (redelivery)."""
        stmt = dialects.insert_ignoring_conflicts(D, dialects.name(self.session)).values(**values)
        result = await self.session.execute(stmt.returning(D.c.id))
        return result.scalar_one_or_none() is not None

    async def latest(self, limit: int, offset: int) -> list[DeadLetterRecord]:
        stmt = select(D).order_by(D.c.id.desc()).offset(offset).limit(limit)
        return [DeadLetterRecord(**r._asdict()) for r in (await self.session.execute(stmt)).all()]
