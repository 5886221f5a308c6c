"""Fire due schedules: each fire time makes at most one task, however many ticks run at once.

The guarantee is the unique (schedule_id, fire_time) row of schedule_runs, written in the same
transaction as the task, its event and outbox rows, and the schedule's next fire time. The row
lock each tick takes on a schedule (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: its one writer)
only spares a second tick the work: it never decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from service.db.repositories.schedules import ScheduleRepository
from service.db.unit_of_work import UnitOfWork, Units
from service.domain import schedules as rules
from service.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from service.domain.events import ScheduleEventType
from service.domain.schedules import (
    OverlapPolicy,
    RunOutcome,
    ScheduleRecord,
    ScheduleStatus,
)
from service.domain.tasks import FINISHED, TaskRecord, TaskStatus
from service.usecases import schedules, tasks as task_usecases
from service.usecases.schedules import Makers, ScheduleSpec

#: At most this many on-time fire times of one schedule per tick (the rest wait for the next).
PER_TICK = 100
#: What makes a schedule pause itself: its task could no longer be made as asked.
INVALID = (InvalidInput, Forbidden, NotFound, Conflict)


@dataclass(frozen=True, slots=True)
class Timing:
    """Settings of the tick: fire times later than `grace` are missed (catchUp decides), and
    one tick looks at `batch` schedules at most."""

    grace: timedelta
    batch: int = 500


@dataclass(slots=True)
class Report:
    made: int = 0
    skipped: int = 0
    paused: int = 0

    def __str__(self) -> str:
        return f"{self.made} tasks made, {self.skipped} fire times skipped, {self.paused} paused"


async def fire_due(units: Units, makers: Makers, timing: Timing, *, now: datetime) -> Report:
    """Fire every due schedule, each in a transaction of its own."""
    report = Report()
    async with units() as uow:
        due = await ScheduleRepository(uow.session).due(now, timing.batch)
    for schedule_id in due:
        async with units() as uow:
            await fire_one(uow, schedule_id, makers, timing, now=now, report=report)
    return report


async def fire_one(
    uow: UnitOfWork,
    schedule_id: UUID,
    makers: Makers,
    timing: Timing,
    *,
    now: datetime,
    report: Report,
) -> None:
    repo = ScheduleRepository(uow.session)
    schedule = await repo.lock_if_free(schedule_id)
    if schedule is None or schedule.status is not ScheduleStatus.ACTIVE:
        return  # another tick holds it, or it changed meanwhile
    firing = _Firing(uow, schedule, makers, now, report)
    try:
        await firing.queued()
        if schedule.next_fire_at is not None and schedule.next_fire_at <= now:
            plan = rules.plan(
                schedule.recurrence(),
                due_from=schedule.next_fire_at,
                now=now,
                grace=timing.grace,
                catch_up=schedule.catch_up,
                catch_up_limit=schedule.catch_up_limit,
                per_tick=PER_TICK,
            )
            for fire_time in plan.fire:
                await firing.fire(fire_time)
            firing.values["next_fire_at"] = plan.next_fire_at
    except INVALID as error:
        if firing.values:
            schedule = await repo.update(schedule_id, firing.values) or schedule
        where = f"{error.context['field']}: " if error.context.get("field") else ""
        await schedules.pause(uow, schedule, now=now, reason=f"{where}{error.detail}"[:2000])
        report.paused += 1
        return
    if firing.values:
        await repo.update(schedule_id, firing.values)


class _Firing:
    """One schedule's fire times in one tick, and the columns they change."""

    def __init__(
        self,
        uow: UnitOfWork,
        schedule: ScheduleRecord,
        makers: Makers,
        now: datetime,
        report: Report,
    ) -> None:
        self.uow = uow
        self.repo = ScheduleRepository(uow.session)
        self.schedule = schedule
        self.makers = makers
        self.now = now
        self.report = report
        self.values: dict[str, Any] = {}
        self.last_task_id = schedule.last_task_id
        self.queued_at = schedule.queued_fire_at

    async def _busy(self) -> bool:
        """Whether the schedule's last task has not finished."""
        if self.last_task_id is None:
            return False
        status = await self.repo.task_status(self.last_task_id)
        return status is not None and TaskStatus(status) not in FINISHED

    async def queued(self) -> None:
        """Make the task of a fire time that waited (queue-one) once the last one finished."""
        if self.queued_at is None or await self._busy():
            return
        fire_time, self.queued_at = self.queued_at, None
        self.values["queued_fire_at"] = None
        task = await self._prepare(fire_time)
        await self.repo.set_run(self.schedule.id, fire_time, RunOutcome.CREATED, task.id)
        await self._store(task, fire_time)

    async def fire(self, fire_time: datetime) -> None:
        policy = self.schedule.overlap_policy
        if policy is OverlapPolicy.ALLOW or not await self._busy():
            task = await self._prepare(fire_time)  # checked before anything is written
            if await self._claim(fire_time, RunOutcome.CREATED, task.id):
                await self._store(task, fire_time)
            return
        if policy is OverlapPolicy.QUEUE_ONE and self.queued_at is None:
            if await self._claim(fire_time, RunOutcome.QUEUED, None):
                self.queued_at = self.values["queued_fire_at"] = fire_time
                self.values["last_fire_at"] = fire_time
                await self._announce(fire_time, RunOutcome.QUEUED, None)
            return
        if await self._claim(fire_time, RunOutcome.SKIPPED, None):
            self.report.skipped += 1
            self.values["last_fire_at"] = fire_time
            await self._announce(fire_time, RunOutcome.SKIPPED, None)

    async def _prepare(self, fire_time: datetime) -> TaskRecord:
        """The task of a fire time, checked as its owner would create it; not yet written."""
        owner = schedules.owner_of(self.schedule)
        new = await schedules.new_task(
            self.uow,
            owner,
            ScheduleSpec.of(self.schedule),
            self.makers,
            now=self.now,
            schedule_id=self.schedule.id,
            fire_time=fire_time,
        )
        return task_usecases.prepare(owner, new, catalog=self.makers.catalog, now=self.now)

    async def _store(self, task: TaskRecord, fire_time: datetime) -> None:
        """Write the task with its event and outbox rows, and the schedule's fired event."""
        await task_usecases.store(self.uow, [task], now=self.now)
        self._made(task.id, fire_time)
        await self._announce(fire_time, RunOutcome.CREATED, task.id)

    def _made(self, task_id: UUID, fire_time: datetime) -> None:
        self.last_task_id = self.values["last_task_id"] = task_id
        self.values["last_fire_at"] = fire_time
        self.report.made += 1

    async def _claim(self, fire_time: datetime, outcome: RunOutcome, task_id: UUID | None) -> bool:
        return await self.repo.claim_run(self.schedule.id, fire_time, outcome, task_id, self.now)

    async def _announce(
        self, fire_time: datetime, outcome: RunOutcome, task_id: UUID | None
    ) -> None:
        data = {
            "fireTime": fire_time.isoformat(),
            "outcome": outcome.value,
            "taskId": None if task_id is None else str(task_id),
        }
        await schedules.announce(
            self.uow, self.schedule, ScheduleEventType.FIRED, now=self.now, data=data
        )
