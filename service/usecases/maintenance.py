"""Maintenance use cases: one run per tick across replicas, and retention."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from service.db import dialects
from service.db.repositories.history import HistoryRepository
from service.db.repositories.idempotency import IdempotencyRepository
from service.db.repositories.outbox import OutboxRepository
from service.db.repositories.tasks import TaskRepository
from service.db.tables import job_runs_table as J


async def claim_tick(
    session: AsyncSession, job: str, slot: int, *, runner: str, now: datetime
) -> int | None:
    """Record that `runner` runs tick `slot` of `job`; None when another replica already does.

    The runner's own unfinished record of the tick is taken again: its earlier try failed
    before it could finish the record (the database went away), or the COMMIT of the claim
    itself went unanswered. Jobs are sweeps, so running one again for its tick is safe.
    """
    stmt = dialects.insert_or_update(
        J,
        dialects.name(session),
        {"job": job, "slot": slot, "runner": runner, "started_at": now},
        keys=["job", "slot"],
        set_=["started_at"],
        where=lambda new: (J.c.runner == new.runner) & J.c.finished_at.is_(None),
    ).returning(J.c.id)
    run_id: int | None = (await session.execute(stmt)).scalar_one_or_none()
    return run_id


async def finish_tick(
    session: AsyncSession, run_id: int, *, now: datetime, outcome: str, detail: str
) -> None:
    await session.execute(
        update(J)
        .where(J.c.id == run_id)
        .values(finished_at=now, outcome=outcome, detail=detail[:2000])
    )


async def cleanup_old_tasks(
    session: AsyncSession, *, now: datetime, retention_days: int, batch: int = 500
) -> int:
    """Delete finished tasks (and their history), published outbox rows and Idempotency-Key
    records past retention."""
    before = now - timedelta(days=retention_days)
    repo = TaskRepository(session)
    ids = await repo.old_finished_ids(before, batch)
    if ids:
        await HistoryRepository(session).delete_for_tasks(ids)
        await repo.delete_ids(ids)
    await OutboxRepository(session).delete_published_before(before)
    await IdempotencyRepository(session).delete_before(before)
    await session.execute(J.delete().where(J.c.started_at < before))
    return len(ids)
