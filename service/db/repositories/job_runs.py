"""Queries on job_runs: one row per maintenance job tick, so replicas never run one twice."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from service.db import dialects
from service.db.tables import job_runs_table as J


class JobRunRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim(self, job: str, slot: int, *, runner: str, now: datetime) -> int | None:
        """Record that `runner` runs tick `slot` of `job`; None when another runner does. The
        runner's own unfinished record of the tick is taken again (see maintenance.claim_tick)."""
        stmt = dialects.insert_or_update(
            J,
            dialects.name(self.session),
            {"job": job, "slot": slot, "runner": runner, "started_at": now},
            keys=["job", "slot"],
            set_=["started_at"],
            where=lambda new: (J.c.runner == new.runner) & J.c.finished_at.is_(None),
        ).returning(J.c.id)
        run_id: int | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return run_id

    async def finish(self, run_id: int, *, now: datetime, outcome: str, detail: str) -> None:
        await self.session.execute(
            update(J)
            .where(J.c.id == run_id)
            .values(finished_at=now, outcome=outcome, detail=detail[:2000])
        )

    async def delete_before(self, before: datetime) -> None:
        await self.session.execute(J.delete().where(J.c.started_at < before))
