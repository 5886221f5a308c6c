"""Queries on schedules and schedule_runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.db import dialects
from service.db.tables import schedule_runs_table as R, schedules_table as S, tasks_table as T
from service.domain.schedules import (
    CatchUp,
    OverlapPolicy,
    RunOutcome,
    ScheduleRecord,
    ScheduleStatus,
)


@dataclass(frozen=True, slots=True)
class ScheduleFilters:
    owner: str | None = None
    status: ScheduleStatus | None = None
    task_type: str | None = None


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A fire time of a schedule, and what it made (with the task's status now)."""

    fire_time: datetime
    outcome: RunOutcome
    task_id: UUID | None
    task_status: str | None
    created_at: datetime


def _record(row: Row[Any]) -> ScheduleRecord:
    values = dict(row._mapping)
    values["overlap_policy"] = OverlapPolicy(values["overlap_policy"])
    values["catch_up"] = CatchUp(values["catch_up"])
    values["status"] = ScheduleStatus(values["status"])
    return ScheduleRecord(**values)


class ScheduleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert(self, values: dict[str, Any]) -> ScheduleRecord:
        await self.session.execute(S.insert().values(**values))
        found = await self.get(values["id"])
        assert found is not None
        return found

    async def get(self, schedule_id: UUID, *, lock: bool = False) -> ScheduleRecord | None:
        """One schedule; `lock`: held until the transaction ends (PostgreSQL: a row lock;
        SQLite's BEGIN IMMEDIATE holds the one write lock already)."""
        stmt = select(S).where(S.c.id == schedule_id)
        if lock and dialects.name(self.session) == "postgresql":
            stmt = stmt.with_for_update()
        row = (await self.session.execute(stmt)).first()
        return None if row is None else _record(row)

    async def lock_if_free(self, schedule_id: UUID) -> ScheduleRecord | None:
        """The schedule, locked, unless another transaction holds it (then None: that one is
        firing it). SQLite has one writer at a time: it is always free."""
        stmt = dialects.lock_skip_locked(select(S).where(S.c.id == schedule_id), self.dialect)
        row = (await self.session.execute(stmt)).first()
        return None if row is None else _record(row)

    @property
    def dialect(self) -> str:
        return dialects.name(self.session)

    async def update(self, schedule_id: UUID, values: dict[str, Any]) -> ScheduleRecord | None:
        await self.session.execute(update(S).where(S.c.id == schedule_id).values(**values))
        return await self.get(schedule_id)

    async def delete_runs_before(self, before: datetime) -> None:
        await self.session.execute(R.delete().where(R.c.created_at < before))

    async def delete(self, schedule_id: UUID) -> None:
        await self.session.execute(R.delete().where(R.c.schedule_id == schedule_id))
        await self.session.execute(S.delete().where(S.c.id == schedule_id))

    async def page(
        self, filters: ScheduleFilters, *, page: int, page_size: int
    ) -> tuple[list[ScheduleRecord], int]:
        """Newest first."""
        where = []
        if filters.owner is not None:
            where.append(S.c.owner == filters.owner)
        if filters.status is not None:
            where.append(S.c.status == filters.status.value)
        if filters.task_type is not None:
            where.append(S.c.task_type == filters.task_type)
        total = (
            await self.session.execute(select(func.count()).select_from(S).where(*where))
        ).scalar_one()
        stmt = (
            select(S)
            .where(*where)
            .order_by(S.c.created_at.desc(), S.c.id.desc())
            .offset((page - 1) * page_size)
            .limit(page_size)
        )
        rows = (await self.session.execute(stmt)).all()
        return [_record(r) for r in rows], int(total)

    async def due(self, now: datetime, limit: int) -> list[UUID]:
        """Active schedules with a fire time at or before `now`, or a queued fire time."""
        active = dialects.is_value(S.c.status, ScheduleStatus.ACTIVE.value)
        due = select(S.c.id).where(active, S.c.next_fire_at <= now)
        queued = select(S.c.id).where(active, S.c.queued_fire_at.is_not(None))
        ids = (await self.session.execute(due.order_by(S.c.next_fire_at).limit(limit))).scalars()
        waiting = (await self.session.execute(queued.limit(limit))).scalars()
        return list(dict.fromkeys([*ids, *waiting]))

    async def claim_run(
        self,
        schedule_id: UUID,
        fire_time: datetime,
        outcome: RunOutcome,
        task_id: UUID | None,
        now: datetime,
    ) -> bool:
        """Record a fire time; False when it was recorded already (another tick made it)."""
        stmt = (
            dialects.insert_ignoring_conflicts(R, self.dialect)
            .values(
                schedule_id=schedule_id,
                fire_time=fire_time,
                outcome=outcome.value,
                task_id=task_id,
                created_at=now,
            )
            .returning(R.c.id)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def set_run(
        self, schedule_id: UUID, fire_time: datetime, outcome: RunOutcome, task_id: UUID | None
    ) -> None:
        await self.session.execute(
            update(R)
            .where(R.c.schedule_id == schedule_id, R.c.fire_time == fire_time)
            .values(outcome=outcome.value, task_id=task_id)
        )

    async def recent_runs(self, schedule_id: UUID, limit: int) -> list[RunRecord]:
        return (await self.recent_runs_of([schedule_id], limit)).get(schedule_id, [])

    async def recent_runs_of(
        self, schedule_ids: Sequence[UUID], limit: int
    ) -> dict[UUID, list[RunRecord]]:
        """The last `limit` runs of each schedule, newest first, in one query (a page of
        schedules reads them all at once)."""
        if not schedule_ids:
            return {}
        rank = (
            func.row_number()
            .over(partition_by=R.c.schedule_id, order_by=R.c.fire_time.desc())
            .label("rank")
        )
        ranked = (
            select(R.c.schedule_id, R.c.fire_time, R.c.outcome, R.c.task_id, R.c.created_at, rank)
            .where(R.c.schedule_id.in_(schedule_ids))
            .subquery()
        )
        stmt = (
            select(
                ranked.c.schedule_id,
                ranked.c.fire_time,
                ranked.c.outcome,
                ranked.c.task_id,
                T.c.status,
                ranked.c.created_at,
            )
            .select_from(ranked.outerjoin(T, T.c.id == ranked.c.task_id))
            .where(ranked.c.rank <= limit)
            .order_by(ranked.c.schedule_id, ranked.c.fire_time.desc())
        )
        runs: dict[UUID, list[RunRecord]] = {}
        for r in (await self.session.execute(stmt)).all():
            runs.setdefault(r[0], []).append(RunRecord(r[1], RunOutcome(r[2]), r[3], r[4], r[5]))
        return runs

    async def task_status(self, task_id: UUID) -> str | None:
        """The status of a task (None: gone or deleted)."""
        stmt = select(T.c.status).where(T.c.id == task_id, T.c.deleted_at.is_(None))
        status: str | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return status
