"""Queries on queues: which are paused, the pause audit, and each queue's figures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.repositories.tasks import ACTIVE
from service.db.tables import (
    queue_audit_table as QA,
    queue_pauses_table as QP,
    tasks_table as T,
)
from service.domain.tasks import TaskStatus

_PAUSED = select(QP.c.queue)
_FINISHED = (TaskStatus.COMPLETED.value, TaskStatus.FAILED.value)


@dataclass(frozen=True, slots=True)
class QueuePauseRecord:
    queue: str
    paused_by: str
    paused_at: datetime


@dataclass(frozen=True, slots=True)
class QueueFigures:
    """One queue's load now: pending (depth, of which due), running, the oldest due task's
    available_at, and the runs that ended since a moment."""

    queue: str
    depth: int
    running: int
    oldest_due_at: datetime | None
    finished: int


class QueueRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def paused(self) -> frozenset[str]:
        rows = (await self.session.execute(_PAUSED)).scalars().all()
        return frozenset(rows)

    async def pauses(self) -> list[QueuePauseRecord]:
        rows = (await self.session.execute(select(QP))).all()
        return [QueuePauseRecord(r.queue, r.paused_by, r.paused_at) for r in rows]

    async def pause(self, queue: str, actor: str, now: datetime) -> bool:
        """Mark `queue` paused; False if it already was (nothing written)."""
        if queue in await self.paused():
            return False
        await self.session.execute(QP.insert().values(queue=queue, paused_by=actor, paused_at=now))
        return True

    async def resume(self, queue: str) -> bool:
        """Unpause `queue`; False if it was not paused."""
        result = await self.session.execute(delete(QP).where(QP.c.queue == queue))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def audit(self, queue: str, action: str, actor: str, now: datetime) -> None:
        await self.session.execute(
            QA.insert().values(queue=queue, action=action, actor=actor, created_at=now)
        )

    async def audit_trail(self, queue: str, limit: int) -> list[tuple[str, str, datetime]]:
        stmt = (
            select(QA.c.action, QA.c.actor, QA.c.created_at)
            .where(QA.c.queue == queue)
            .order_by(QA.c.id.desc())
            .limit(limit)
        )
        return [(r.action, r.actor, r.created_at) for r in (await self.session.execute(stmt))]

    async def figures(self, *, now: datetime, since: datetime) -> dict[str, QueueFigures]:
        """Every queue that has pending or running tasks, or runs that ended since `since`."""
        pending = T.c.status == TaskStatus.PENDING.value
        live = (
            select(
                T.c.queue,
                func.count().filter(pending).label("depth"),
                func.count().filter(T.c.status == TaskStatus.PROCESSING.value).label("running"),
                func.min(case((and_(pending, T.c.available_at <= now), T.c.available_at))).label(
                    "oldest"
                ),
            )
            .where(T.c.status.in_([TaskStatus.PENDING.value, TaskStatus.PROCESSING.value]), ACTIVE)
            .group_by(T.c.queue)
        )
        ended = (
            select(T.c.queue, func.count().label("finished"))
            .where(T.c.status.in_(_FINISHED), T.c.updated_at >= since, T.c.completed_at >= since)
            .group_by(T.c.queue)
        )
        figures: dict[str, QueueFigures] = {}
        for r in await self.session.execute(live):
            figures[r.queue] = QueueFigures(r.queue, r.depth, r.running, r.oldest, 0)
        for r in await self.session.execute(ended):
            known = figures.get(r.queue) or QueueFigures(r.queue, 0, 0, None, 0)
            figures[r.queue] = QueueFigures(
                known.queue, known.depth, known.running, known.oldest_due_at, r.finished
            )
        return figures
