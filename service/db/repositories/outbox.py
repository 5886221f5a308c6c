"""Queries on the outbox: append in the task's transaction, drain in id order."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Row, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.tables import outbox_table as O

# Built once: every state change appends a row, and the relay drains after nearly every commit.
_ADD = O.insert()
_NEXT_BATCH = (
    select(O)
    .where(O.c.published_at.is_(None))
    .order_by(O.c.id)
    .limit(bindparam("batch_limit", type_=Integer()))
)
_MARK_PUBLISHED = (
    update(O)
    .where(O.c.id.in_(bindparam("published_ids", expanding=True)))
    .values(
        published_at=bindparam("published_now", type_=O.c.published_at.type),
        attempts=O.c.attempts + 1,
    )
)


class OutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            await self.session.execute(_ADD, rows)

    async def next_batch(self, limit: int) -> Sequence[Row[Any]]:
        return (await self.session.execute(_NEXT_BATCH, {"batch_limit": limit})).all()

    async def mark_published(self, ids: Sequence[int], now: datetime) -> None:
        if ids:
            params = {"published_ids": list(ids), "published_now": now}
            await self.session.execute(_MARK_PUBLISHED, params)

    async def mark_failed(self, row_id: int, error: str) -> None:
        await self.session.execute(
            update(O)
            .where(O.c.id == row_id)
            .values(attempts=O.c.attempts + 1, last_error=error[:2000])
        )

    async def pending_count(self) -> int:
        stmt = select(func.count()).select_from(O).where(O.c.published_at.is_(None))
        return int((await self.session.execute(stmt)).scalar_one())

    async def delete_published_before(self, before: datetime) -> int:
        result = await self.session.execute(
            O.delete().where(O.c.published_at.is_not(None), O.c.published_at < before)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]
