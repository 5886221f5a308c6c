"""The database's gauges for /metrics: queue depth, oldest due task, outbox backlog.

Bounded whatever the table's size, in one round trip: depths are counted over the partial
indexes up to a cap (beyond it the gauge reads the cap), and the oldest due task of a queue
is the first entry of the claim index per priority (a handful of index probes), never a scan.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, FromClause, ScalarSelect, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db import dialects
from service.db.tables import outbox_table as O, tasks_table as T
from service.domain.tasks import Priority, Queue, TaskStatus


@dataclass(frozen=True, slots=True)
class QueueSample:
    queue: str
    #: pending tasks due now, counted up to the cap
    depth: int
    #: when the oldest pending task of the queue became due (None: none is due)
    oldest_due: datetime | None


@dataclass(frozen=True, slots=True)
class Sample:
    queues: list[QueueSample]
    outbox_backlog: int
    outbox_oldest: datetime | None


def _due(queue: Queue, now: datetime) -> list[ColumnElement[bool]]:
    return [
        dialects.is_value(T.c.status, TaskStatus.PENDING.value),
        T.c.queue == queue.value,
        T.c.available_at <= now,
    ]


def _capped_count(
    table: FromClause, where: list[ColumnElement[bool]], cap: int
) -> ScalarSelect[Any]:
    capped = select(literal(1)).select_from(table).where(*where).limit(cap).subquery()
    return select(func.count()).select_from(capped).scalar_subquery()


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


async def sample(session: AsyncSession, *, now: datetime, cap: int) -> Sample:
    """One statement of scalar subqueries: a capped count and per-priority minimums."""
    columns: list[ScalarSelect[Any]] = []
    for queue in Queue:
        columns.append(_capped_count(T, _due(queue, now), cap))
        for priority in Priority:
            first_due = select(func.min(T.c.available_at)).where(
                *_due(queue, now), T.c.priority == int(priority)
            )
            columns.append(first_due.scalar_subquery())
    unpublished: list[ColumnElement[bool]] = [O.c.published_at.is_(None)]
    columns.append(_capped_count(O, unpublished, cap))
    first = select(O.c.created_at).where(*unpublished).order_by(O.c.id).limit(1)
    columns.append(first.scalar_subquery())
    row: list[Any] = list((await session.execute(select(*columns))).one())
    queues = []
    step = 1 + len(Priority)
    for index, queue in enumerate(Queue):
        depth, *oldest = row[index * step : (index + 1) * step]
        found = [moment for moment in (_utc(o) for o in oldest) if moment is not None]
        queues.append(QueueSample(queue.value, int(depth or 0), min(found) if found else None))
    return Sample(queues, int(row[-2] or 0), _utc(row[-1]))
