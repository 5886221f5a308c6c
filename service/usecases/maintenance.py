"""Maintenance use cases: one run per tick across replicas, and retention."""

from __future__ import annotations

from datetime import datetime, timedelta

from service.db.repositories.history import HistoryRepository
from service.db.repositories.idempotency import IdempotencyRepository
from service.db.repositories.job_runs import JobRunRepository
from service.db.repositories.notifications import DeliveryRepository, MessageRepository
from service.db.repositories.outbox import OutboxRepository
from service.db.repositories.tasks import TaskRepository
from service.db.unit_of_work import UnitOfWork


async def claim_tick(
    uow: UnitOfWork, job: str, slot: int, *, runner: str, now: datetime
) -> int | None:
    """Record that `runner` runs tick `slot` of `job`; None when another replica already does.

    The runner's own unfinished record of the tick is taken again: its earlier try failed
    before it could finish the record (the database went away), or the COMMIT of the claim
    itself went unanswered. Jobs are sweeps, so running one again for its tick is safe.
    """
    return await JobRunRepository(uow.session).claim(job, slot, runner=runner, now=now)


async def finish_tick(
    uow: UnitOfWork, run_id: int, *, now: datetime, outcome: str, detail: str
) -> None:
    await JobRunRepository(uow.session).finish(run_id, now=now, outcome=outcome, detail=detail)


async def cleanup_old_tasks(
    uow: UnitOfWork, *, now: datetime, retention_days: int, batch: int = 500
) -> int:
    """Delete finished tasks (and their history and webhook deliveries), published outbox
    rows, Idempotency-Key records, job runs, inbox messages and schedule runs past retention (a
    schedule's next fire time only moves forward, so a fire time whose run is gone never fires
    again)."""
    before = now - timedelta(days=retention_days)
    repo = TaskRepository(uow.session)
    ids = await repo.old_finished_ids(before, batch)
    if ids:
        await HistoryRepository(uow.session).delete_for_tasks(ids)
        await DeliveryRepository(uow.session).delete_for_tasks(ids)
        await repo.delete_ids(ids)
    await OutboxRepository(uow.session).delete_published_before(before)
    await IdempotencyRepository(uow.session).delete_before(before)
    await JobRunRepository(uow.session).delete_before(before)
    # schedules (and croniter, their rules'): with the daily cleanup, not at the worker's start
    from service.db.repositories.schedules import ScheduleRepository

    await ScheduleRepository(uow.session).delete_runs_before(before)
    await MessageRepository(uow.session).delete_before(before)
    return len(ids)
