"""Fire times across replicas: two ticks at once (two processes' engines) make one task per
fire time, on PostgreSQL and SQLite; the embedded scheduler's ticks make tasks that run."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import func, select

from service.bootstrap import Resources
from service.clock import utcnow
from service.db.tables import schedule_runs_table, tasks_table
from service.domain.callers import Caller
from service.domain.schedules import OverlapPolicy
from service.usecases import firing, maintenance, schedules
from service.usecases.schedules import ScheduleSpec
from tests.fixtures.app import user, wait_until
from tests.integration.worker.support import open_resources, rows

TIMING = firing.Timing(grace=timedelta(seconds=60))


async def make_schedule(resources: Resources, **fields: Any) -> Any:
    spec = ScheduleSpec(name="race", cron="* * * * * *", task_type="noop", **fields)
    async with resources.unit() as uow:
        return await schedules.create(
            uow, Caller("alice"), spec, resources.schedule_makers, now=utcnow()
        )


async def fire_times_and_tasks(resources: Resources, schedule_id: Any) -> tuple[int, int, int]:
    """(tasks, distinct fire times among them, schedule_runs rows) of the schedule."""
    async with resources.sessionmaker() as session:
        mine = tasks_table.c.schedule_id == str(schedule_id)
        made = (await session.execute(select(func.count()).where(mine))).scalar_one()
        distinct = (
            await session.execute(
                select(func.count(tasks_table.c.fire_time.distinct())).where(mine)
            )
        ).scalar_one()
    runs = await rows(resources, schedule_runs_table, schedule_id=schedule_id)
    return int(made), int(distinct), len(runs)


class TestTwoTicksAtOnce:
    @pytest.mark.parametrize("schedule_count", [1, 5])
    async def test_each_fire_time_makes_exactly_one_task(
        self, database_url: str, tmp_path: Path, schedule_count: int
    ) -> None:
        async with AsyncExitStack() as stack:
            a, b = [
                await stack.enter_async_context(
                    open_resources(database_url, tmp_path / name, worker_id=name)
                )
                for name in ("replica-a", "replica-b")
            ]
            made = [
                await make_schedule(a, overlap_policy=OverlapPolicy.ALLOW)
                for _ in range(schedule_count)
            ]
            start = max(s.next_fire_at for s in made)
            made_in_all = 0
            for round_ in range(3):  # every second fires: 10 s of fire times per round
                now = start + timedelta(seconds=10 * (round_ + 1))
                reports = await asyncio.gather(
                    firing.fire_due(a.unit, a.schedule_makers, TIMING, now=now),
                    firing.fire_due(b.unit, b.schedule_makers, TIMING, now=now),
                )
                made_in_all += sum(r.made for r in reports)
            for schedule in made:
                expected = int((now - schedule.next_fire_at).total_seconds()) + 1
                assert await fire_times_and_tasks(a, schedule.id) == (expected,) * 3
                made_in_all -= expected
            assert made_in_all == 0

    async def test_the_unique_row_decides_even_when_both_ticks_fire_it(
        self, database_url: str, tmp_path: Path
    ) -> None:
        """Without the tick's row lock (a tick reading the schedule before the other's commit,
        as on any database), the second claim of a fire time writes no task."""
        async with open_resources(database_url, tmp_path) as r:
            schedule = await make_schedule(r, overlap_policy=OverlapPolicy.ALLOW)
            at: datetime = schedule.next_fire_at
            for _ in range(2):
                async with r.unit() as uow:
                    firing_ = firing._Firing(uow, schedule, r.schedule_makers, at, firing.Report())
                    await firing_.fire(at)
            tasks, distinct, runs = await fire_times_and_tasks(r, schedule.id)
            assert (tasks, distinct, runs) == (1, 1, 1)


class TestEmbeddedScheduler:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"poll_fast_seconds": 0.1}

    async def test_an_every_second_schedule_makes_tasks_that_run(
        self, embedded: httpx.AsyncClient, resources: Resources
    ) -> None:
        answer = await embedded.post(
            "/api/v1/operations/schedules",
            json={"name": "tick", "cron": "* * * * * *", "taskType": "noop"},
            headers=user("alice"),
        )
        assert answer.status_code == 201, answer.text
        schedule_id = answer.json()["id"]

        async def completed() -> int:
            async with resources.sessionmaker() as session:
                stmt = select(func.count()).where(
                    tasks_table.c.schedule_id == schedule_id, tasks_table.c.status == "completed"
                )
                done = int((await session.execute(stmt)).scalar_one())
            return done if done >= 3 else 0

        await wait_until(completed, timeout=30)
        detail = (
            await embedded.get(f"/api/v1/operations/schedules/{schedule_id}", headers=user("alice"))
        ).json()
        assert any(r["taskStatus"] == "completed" for r in detail["lastRuns"])
        tasks, distinct, runs = await fire_times_and_tasks(resources, UUID(schedule_id))
        assert tasks == distinct
        assert runs >= tasks  # skipped fire times (the default overlap: skip) have no task


class TestRetention:
    async def test_cleanup_deletes_schedule_runs_past_retention(
        self, database_url: str, tmp_path: Path
    ) -> None:
        async with open_resources(database_url, tmp_path) as r:
            schedule = await make_schedule(r)
            await firing.fire_due(r.unit, r.schedule_makers, TIMING, now=schedule.next_fire_at)
            assert len(await rows(r, schedule_runs_table, schedule_id=schedule.id)) == 1
            async with r.unit() as uow:
                await maintenance.cleanup_old_tasks(
                    uow, now=utcnow() + timedelta(days=31), retention_days=30
                )
            assert await rows(r, schedule_runs_table, schedule_id=schedule.id) == []
