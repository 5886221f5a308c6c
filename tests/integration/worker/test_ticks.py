"""Maintenance ticks: one run per (job, slot) however many replicas fire it."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path

from service.clock import utcnow
from service.db.tables import events_table, job_runs_table
from tests.fixtures.app import wait_until
from tests.integration.worker.support import load_task, make_task, open_resources, rows
from worker.jobs.ticks import run_tick


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
