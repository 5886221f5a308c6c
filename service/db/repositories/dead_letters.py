"""Queries on dead letters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db import dialects
from service.db.tables import dead_letters_table as D


class DeadLetterRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, values: dict[str, Any]) -> bool:
        """Record one; False when that event id was already recorded (redelivery)."""
        stmt = dialects.insert_ignoring_conflicts(D, dialects.name(self.session)).values(**values)
        result = await self.session.execute(stmt.returning(D.c.id))
        return result.scalar_one_or_none() is not None

    async def latest(self, limit: int, offset: int) -> Sequence[Row[Any]]:
        stmt = select(D).order_by(D.c.id.desc()).offset(offset).limit(limit)
        return (await self.session.execute(stmt)).all()
