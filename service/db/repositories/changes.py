"""Reads of what changed, for live streams: outbox rows (status changes and progress notices,
each carrying the task's snapshot) and log lines, in id order, after a position."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.repositories.history import LogRecord
from service.db.tables import logs_table as L, outbox_table as O


@dataclass(frozen=True, slots=True)
class Notice:
    """One outbox row as a stream shows it: the event (topic) and the task after it."""

    id: int
    topic: str
    task_id: UUID
    payload: dict[str, Any]
    created_at: datetime


def _notice(row: Any) -> Notice:
    return Notice(int(row.id), row.topic, row.task_id, row.payload, row.created_at)


def _log(row: Any) -> LogRecord:
    return LogRecord(
        int(row.id), row.task_id, row.level, row.message, row.attempt, row.data, row.created_at
    )


_NOTICE_COLUMNS = (O.c.id, O.c.topic, O.c.task_id, O.c.payload, O.c.created_at)


class ChangeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def heads(self) -> tuple[int, int]:
        """The highest outbox id and log id written so far (0 when none)."""
        outbox = await self.session.scalar(select(func.coalesce(func.max(O.c.id), 0)))
        logs = await self.session.scalar(select(func.coalesce(func.max(L.c.id), 0)))
        return int(outbox or 0), int(logs or 0)

    async def task_heads(self, task_id: UUID) -> tuple[int, int]:
        """The highest outbox id and log id of one task (0 when none)."""
        outbox = await self.session.scalar(
            select(func.coalesce(func.max(O.c.id), 0)).where(O.c.task_id == task_id)
        )
        logs = await self.session.scalar(
            select(func.coalesce(func.max(L.c.id), 0)).where(L.c.task_id == task_id)
        )
        return int(outbox or 0), int(logs or 0)

    async def notices_after(
        self, after: int, limit: int, task_id: UUID | None = None
    ) -> list[Notice]:
        """Outbox rows of tasks above id `after`, oldest first (of one task if given)."""
        stmt = select(*_NOTICE_COLUMNS).where(O.c.id > after, O.c.task_id.is_not(None))
        if task_id is not None:
            stmt = stmt.where(O.c.task_id == task_id)
        rows = await self.session.execute(stmt.order_by(O.c.id).limit(limit))
        return [_notice(r) for r in rows]

    async def logs_after(
        self, after: int, limit: int, task_id: UUID | None = None
    ) -> list[LogRecord]:
        """Log lines above id `after`, oldest first (of one task if given)."""
        stmt = select(L).where(L.c.id > after)
        if task_id is not None:
            stmt = stmt.where(L.c.task_id == task_id)
        rows = await self.session.execute(stmt.order_by(L.c.id).limit(limit))
        return [_log(r) for r in rows]

    async def notices_in(self, ids: list[int]) -> list[Notice]:
        """Outbox rows of these ids that exist now (ids that were missing may have committed)."""
        stmt = select(*_NOTICE_COLUMNS).where(O.c.id.in_(ids), O.c.task_id.is_not(None))
        return [_notice(r) for r in await self.session.execute(stmt.order_by(O.c.id))]

    async def logs_in(self, ids: list[int]) -> list[LogRecord]:
        stmt = select(L).where(L.c.id.in_(ids)).order_by(L.c.id)
        return [_log(r) for r in await self.session.execute(stmt)]

    async def log_head(self) -> int:
        return int(await self.session.scalar(select(func.coalesce(func.max(L.c.id), 0))) or 0)
