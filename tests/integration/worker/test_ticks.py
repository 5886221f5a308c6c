"""Maintenance ticks: one run per (job, slot) however many replicas fire it."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path

from service.clock import utcnow
from service.db.tables import events_table, job_runs_table
from service.usecases import maintenance
from tests.fixtures.app import wait_until
from tests.integration.worker.support import Outage, load_task, make_task, open_resources, rows
from worker.jobs.ticks import JobTrigger, run_tick


class TestRunTick:
    async def test_two_replicas_firing_the_same_tick_run_the_job_once(
        self, database_url: str, tmp_path: Path
    ) -> None:
        async with AsyncExitStack() as stack:
            a, b = [
                await stack.enter_async_context(
                    open_resources(database_url, tmp_path / name, worker_id=name)
                )
                for name in ("replica-a", "replica-b")
            ]
            due_at = utcnow() + timedelta(seconds=0.2)
            task = await make_task(a, scheduled_at=due_at)
            assert task.status == "scheduled"

            async def is_due() -> bool:
                return utcnow() > due_at

            await wait_until(is_due)
            slot = int(utcnow().timestamp())
            results = await asyncio.gather(
                run_tick(a, "process-scheduled", slot), run_tick(b, "process-scheduled", slot)
            )

            ran = [r for r in results if r is not None]
            assert ran == ["1 scheduled tasks became pending"], results
            runs = await rows(a, job_runs_table, job="process-scheduled")
            assert [(r.slot, r.outcome) for r in runs] == [(slot, "completed")]
            assert runs[0].runner == ("replica-a" if results[0] is not None else "replica-b")
            assert runs[0].finished_at is not None
            assert (await load_task(a, task.id)).status == "pending"
            events = await rows(a, events_table, task_id=task.id)
            assert [e.event_type.rsplit(".", 1)[1] for e in events] == ["scheduled", "created"]

            # The next tick is a new slot: it runs again (and finds nothing left to do).
            assert await run_tick(b, "process-scheduled", slot + 1) == (
                "0 scheduled tasks became pending"
            )


class TestTicksThroughAnOutage:
    async def test_a_runners_own_unfinished_record_of_a_tick_is_taken_again(
        self, database_url: str, tmp_path: Path
    ) -> None:
        """A try that claimed the tick but could not finish its record (or whose claim COMMIT
        went unanswered) does not make the next try skip the tick."""
        async with open_resources(database_url, tmp_path) as r:

            async def claim(runner: str) -> int | None:
                async with r.unit() as uow:
                    return await maintenance.claim_tick(
                        uow, "detect-timeouts", 7, runner=runner, now=utcnow()
                    )

            first = await claim("replica-a")
            assert first is not None
            assert await claim("replica-a") == first
            assert await claim("replica-b") is None
            async with r.unit() as uow:
                await maintenance.finish_tick(
                    uow, first, now=utcnow(), outcome="completed", detail=""
                )
            assert await claim("replica-a") is None

    async def test_a_tick_that_failed_for_want_of_the_database_runs_when_it_is_back(
        self, database_url: str, tmp_path: Path
    ) -> None:
        async with open_resources(database_url, tmp_path, worker_id="replica-a") as r:
            outage = Outage(r.sessionmaker)
            r.sessionmaker = outage  # type: ignore[assignment]
            outage.down = True
            trigger = JobTrigger(r)
            assert trigger.fire("process-scheduled", 42)

            async def failed_once() -> bool:
                return any(h["outcome"] == "failed" for h in trigger.history)

            await wait_until(failed_once, timeout=5)
            assert not trigger.fire("process-scheduled", 42)  # still trying: not twice at once
            outage.down = False

            async def ran() -> bool:
                return bool(trigger.last["process-scheduled"]["outcome"] == "ok")

            await wait_until(ran, timeout=10)
            await trigger.stop()
            runs = await rows(r, job_runs_table, job="process-scheduled")
            assert [(x.slot, x.outcome) for x in runs] == [(42, "completed")]

    async def test_a_tick_fired_while_its_job_runs_is_run_after_it(
        self, database_url: str, tmp_path: Path
    ) -> None:
        async with open_resources(database_url, tmp_path, worker_id="replica-a") as r:
            trigger = JobTrigger(r)
            assert trigger.fire("process-scheduled", 1)
            assert not trigger.fire("process-scheduled", 2)
            assert not trigger.fire("process-scheduled", 3)  # the latest waiting tick stands

            async def both() -> bool:
                return [h["slot"] for h in trigger.history] == [1, 3]

            await wait_until(both, timeout=10)
            await trigger.stop()
