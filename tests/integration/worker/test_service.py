"""WorkerService shutdown: running tasks go back to the queue, and nothing new is taken."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

from service.bootstrap import Resources
from service.db.tables import attempts_table, events_table
from tests.fixtures.app import wait_until
from tests.integration.worker.support import load_task, make_task, open_resources, rows
from worker.service import WorkerService


async def wait_processing(resources: Resources, task_id: UUID) -> None:
    async def processing() -> bool:
        task = await load_task(resources, task_id)
        return bool(task.status == "processing")

    await wait_until(processing)


class TestGracefulShutdown:
    async def test_stop_releases_a_running_task_back_to_pending(
        self, database_url: str, tmp_path: Path
    ) -> None:
        async with open_resources(
            database_url, tmp_path, shutdown_grace_seconds=0.2, poll_fast_seconds=0.05
        ) as resources:
            worker = WorkerService(resources)
            await worker.start()
            try:
                task = await make_task(resources, "sleep", params={"seconds": 30})
                await wait_processing(resources, task.id)
            finally:
                await worker.stop()

            after = await load_task(resources, task.id)
            assert after.status == "pending"
            assert after.retry_count == 0
            assert after.worker_id is None
            assert after.lease_until is None
            attempts = await rows(resources, attempts_table, task_id=task.id)
            assert [(a.attempt, a.outcome) for a in attempts] == [(1, "released")]
            events = await rows(resources, events_table, task_id=task.id)
            assert [e.event_type.rsplit(".", 1)[1] for e in events] == [
                "created",
                "started",
                "retried",
            ]
            assert events[-1].message == "released at worker shutdown"
            assert not worker.runner.running

    async def test_a_stopping_worker_claims_no_new_work(
        self, database_url: str, tmp_path: Path
    ) -> None:
        async with open_resources(
            database_url, tmp_path, shutdown_grace_seconds=0.2, poll_fast_seconds=3600
        ) as resources:
            worker = WorkerService(resources)
            await worker.start()
            try:
                running = await make_task(resources, "sleep", params={"seconds": 30})
                worker.runner.wake()
                await wait_processing(resources, running.id)
                # Due now, but no doorbell has rung for it before the stop begins.
                waiting = await make_task(resources, "noop")
            finally:
                await worker.stop()

            after = await load_task(resources, waiting.id)
            assert after.status == "pending"
            assert after.attempts == 0
            assert await rows(resources, attempts_table, task_id=waiting.id) == []
            assert (await load_task(resources, running.id)).status == "pending"
