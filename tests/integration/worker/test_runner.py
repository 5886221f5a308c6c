"""The runner: exactly-once claims under races, priority order, retries, failures, cancel."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import func, select, text

from service.bootstrap import Resources
from service.catalog.builtin import NoParams
from service.catalog.model import TaskType
from service.clock import utcnow
from service.db.engine import session_scope
from service.db.tables import attempts_table, tasks_table
from service.domain.tasks import Priority, Queue
from service.usecases import execution, tasks as task_usecases
from tests.fixtures.app import user, wait_until
from tests.fixtures.catalog import with_types
from tests.integration.worker.support import (
    ALICE,
    insert_unlisted,
    load_task,
    make_task,
    open_resources,
    rows,
)
from worker.context import HandlerContext
from worker.poller import Poller
from worker.registry import HandlerRegistry
from worker.runner import PREFETCH_BELOW, Runner

BASE = "/api/v1/operations/tasks"
FINISHED = ("completed", "failed", "cancelled")


RECORD = TaskType("record", "notes each execution (tests)", NoParams)


@contextlib.asynccontextmanager
async def open_recording(*args: Any, **overrides: Any) -> AsyncIterator[Resources]:
    """Resources whose catalog also lists the test type `record`."""
    async with open_resources(*args, **overrides) as resources:
        yield with_types(resources, RECORD)


def recording_registry(
    resources: Resources, ran: list[tuple[UUID, str]], pause: float = 0.0
) -> HandlerRegistry:
    """A registry whose `record` handler notes (task id, worker id) of every execution."""
    registry = HandlerRegistry(resources.catalog)

    @registry.handler("record")
    async def record(ctx: HandlerContext) -> None:
        ran.append((ctx.task.id, ctx.worker_id))
        if pause:
            await asyncio.sleep(pause)

    return registry


async def count_completed(resources: Resources) -> int:
    async with session_scope(resources.sessionmaker) as session:
        stmt = (
            select(func.count()).select_from(tasks_table).where(tasks_table.c.status == "completed")
        )
        return int((await session.execute(stmt)).scalar_one())


@pytest.mark.postgres_only
@pytest.mark.parametrize("dialect", ["postgresql"])
@pytest.mark.serial  # that every replica gets some tasks follows their pace of claiming ahead
class TestExactlyOnce:
    TASKS = 500

    async def test_racing_runners_and_pollers_run_each_task_exactly_once(
        self, database_url: str, tmp_path: Path
    ) -> None:
        ran: list[tuple[UUID, str]] = []
        async with contextlib.AsyncExitStack() as stack:
            replicas = [
                await stack.enter_async_context(
                    open_recording(
                        database_url,
                        tmp_path / f"runner-{i}",
                        worker_id=f"runner-{i}",
                        poll_fast_seconds=0.05,
                    )
                )
                for i in range(3)
            ]
            async with replicas[0].unit() as uow:
                for _ in range(self.TASKS):
                    await task_usecases.create(
                        uow,
                        ALICE,
                        task_usecases.NewTask(task_type="record"),
                        now=utcnow(),
                        catalog=replicas[0].catalog,
                    )
            registry = recording_registry(replicas[0], ran, pause=0.005)
            runners = [Runner(r, registry) for r in replicas]
            pollers = [Poller(x, x.resources.settings, healthy=lambda: False) for x in runners]
            loops = [asyncio.create_task(x.run()) for x in runners]
            polls = [asyncio.create_task(p.run()) for p in pollers]
            for runner in runners:  # the same doorbell reaches every replica at once
                runner.wake("push")
            try:
                await wait_until(
                    lambda: _all_completed(replicas[0], self.TASKS), timeout=60, interval=0.1
                )
            finally:
                for poll in polls:
                    poll.cancel()
                await asyncio.gather(*(x.stop(grace=1.0) for x in runners))
                await asyncio.gather(*loops, *polls, return_exceptions=True)

            executions = Counter(task_id for task_id, _ in ran)
            assert len(executions) == self.TASKS
            assert set(executions.values()) == {1}
            attempts = await rows(replicas[0], attempts_table)
            assert len(attempts) == self.TASKS
            assert {a.task_id for a in attempts} == set(executions)
            assert {(a.attempt, a.outcome) for a in attempts} == {(1, "completed")}
            ran_by = dict(ran)
            assert all(a.worker_id == ran_by[a.task_id] for a in attempts)
            per_runner = Counter(worker for _, worker in ran)
            assert set(per_runner) == {"runner-0", "runner-1", "runner-2"}, per_runner
            assert sum(x.stats.claimed for x in runners) == self.TASKS


async def _all_completed(resources: Resources, expected: int) -> bool:
    return await count_completed(resources) == expected


@pytest.mark.serial  # claiming ahead follows the handlers' measured pace: a loaded machine moves it
class TestClaimingAhead:
    async def test_fast_work_is_claimed_ahead_of_free_slots(
        self, database_url: str, tmp_path: Path
    ) -> None:
        """Runs that end fast let a claim take more than the free slots (one claim and one
        finish then carry many tasks); each task still runs once, never above concurrency."""
        ran: list[tuple[UUID, str]] = []
        async with open_recording(
            database_url, tmp_path, worker_concurrency={"default": 2}, claim_batch_size=20
        ) as resources:
            ids = {(await make_task(resources, "record")).id for _ in range(60)}
            runner = Runner(resources, recording_registry(resources, ran))
            await asyncio.wait_for(runner.run(until_idle=True), timeout=30)
        assert sorted(i for i, _ in ran) == sorted(ids)
        assert runner.stats.claims < 60 // 2  # more than two tasks a claim
        assert max(runner.stats.claim_sizes) > 2

    async def test_time_waiting_for_a_slot_is_not_counted_as_run_time(
        self, database_url: str, tmp_path: Path
    ) -> None:
        """The pace that decides claiming ahead is the handlers' time: tasks that waited in
        the buffer must not make a fast queue look slow (and stop claiming ahead), and a
        half-full buffer is refilled by one claim of many, not one claim per finished run."""
        ran: list[tuple[UUID, str]] = []
        async with open_recording(
            database_url, tmp_path, worker_concurrency={"default": 1}, claim_batch_size=50
        ) as resources:
            for _ in range(40):
                await make_task(resources, "record")
            runner = Runner(resources, recording_registry(resources, ran, pause=0.01))
            await asyncio.wait_for(runner.run(until_idle=True), timeout=30)
        assert len(ran) == 40
        pace = runner.pace["default"]
        assert pace is not None
        assert pace < PREFETCH_BELOW
        assert max(runner.stats.claim_sizes) >= 20
        assert len([n for n in runner.stats.claim_sizes if n]) <= 8  # claims that took any

    async def test_slow_work_is_never_claimed_ahead(
        self, database_url: str, tmp_path: Path
    ) -> None:
        """A task must not wait in one worker while another could run it: runs slower than
        PREFETCH_BELOW keep claims to the free slots."""
        ran: list[tuple[UUID, str]] = []
        async with open_recording(
            database_url, tmp_path, worker_concurrency={"default": 1}
        ) as resources:
            for _ in range(4):
                await make_task(resources, "record")
            runner = Runner(resources, recording_registry(resources, ran, pause=0.1))
            await asyncio.wait_for(runner.run(until_idle=True), timeout=30)
        assert len(ran) == 4
        assert max(runner.stats.claim_sizes) == 1

    async def test_tasks_claimed_ahead_are_handed_back_at_a_stop(
        self, database_url: str, tmp_path: Path
    ) -> None:
        ran: list[tuple[UUID, str]] = []
        async with open_recording(
            database_url, tmp_path, worker_concurrency={"default": 1}
        ) as resources:
            ids = [(await make_task(resources, "record")).id for _ in range(5)]
            runner = Runner(resources, recording_registry(resources, ran, pause=30))
            runner.pace["default"] = 0.001  # as if its runs had been fast
            loop = asyncio.create_task(runner.run())
            runner.wake("push")
            await wait_until(lambda: _started(ran), timeout=10)
            assert len(runner.queued["default"]) == 4  # claimed ahead, waiting for the slot
            await runner.stop(grace=0.1)
            await asyncio.gather(loop, return_exceptions=True)
            statuses = [(await load_task(resources, i)).status for i in ids]
            outcomes = await rows(resources, attempts_table, attempts_table.c.task_id)
        assert statuses == ["pending"] * 5  # the running one released too, none lost
        assert {a.outcome for a in outcomes} == {"released"}


class TestDispatchLabels:
    async def test_a_backlog_found_by_a_doorbell_is_dispatched_by_push_throughout(
        self, database_url: str, tmp_path: Path
    ) -> None:
        """Claims that follow freed slots keep the label of the doorbell that found the work:
        a backlog a delivered event announced is not counted as the poller's."""
        ran: list[tuple[UUID, str]] = []
        async with open_recording(
            database_url, tmp_path, worker_concurrency={"default": 1}
        ) as resources:
            for _ in range(6):
                await make_task(resources, "record")
            runner = Runner(resources, recording_registry(resources, ran, pause=0.06))
            loop = asyncio.create_task(runner.run())
            runner.wake("push")
            try:
                await wait_until(lambda: _all_completed(resources, 6), timeout=20)
            finally:
                await runner.stop(grace=1.0)
                await asyncio.gather(loop, return_exceptions=True)
            attempts = await rows(resources, attempts_table, attempts_table.c.task_id)
        assert max(runner.stats.claim_sizes) == 1  # one claim per freed slot
        assert {a.dispatch for a in attempts} == {"push"}
        assert runner.stats.by_dispatch == {"push": 6, "poll": 0}


async def _started(ran: list[tuple[UUID, str]]) -> bool:
    return bool(ran)


class TestPriority:
    async def test_higher_priorities_created_later_are_claimed_first(
        self, database_url: str, tmp_path: Path
    ) -> None:
        ran: list[tuple[UUID, str]] = []
        async with open_recording(
            database_url, tmp_path, worker_concurrency={"default": 1}
        ) as resources:
            lows = [await make_task(resources, "record", priority=Priority.LOW) for _ in range(3)]
            normal = await make_task(resources, "record", priority=Priority.NORMAL)
            high = await make_task(resources, "record", priority=Priority.HIGH)
            urgent = await make_task(
                resources, "record", priority=Priority.URGENT, queue=Queue.DEFAULT
            )
            runner = Runner(resources, recording_registry(resources, ran))
            await asyncio.wait_for(runner.run(until_idle=True), timeout=30)

        assert [task_id for task_id, _ in ran] == [
            urgent.id,
            high.id,
            normal.id,
            *(t.id for t in lows),
        ]
        assert runner.stats.claimed == len(ran)  # claimed ahead or not, each ran once, in order


class TestOneClaimForAllQueues:
    async def test_each_queue_gets_at_most_its_room_highest_priority_first(
        self, database_url: str, tmp_path: Path
    ) -> None:
        async with open_recording(database_url, tmp_path) as resources:
            default = [
                await make_task(resources, "record", priority=p)
                for p in (Priority.LOW, Priority.HIGH, Priority.NORMAL, Priority.HIGH)
            ]
            urgent = [await make_task(resources, "record", priority=Priority.URGENT)]
            bulk = [await make_task(resources, "record", queue=Queue.BULK) for _ in range(2)]
            async with resources.unit() as uow:
                claimed = await execution.claim(
                    uow,
                    worker_id="w",
                    rooms={"default": 2, "urgent": 5, "bulk": 0},
                    now=utcnow(),
                    lease_seconds=60,
                    dispatch="poll",
                )
            async with resources.unit() as uow:
                again = await execution.claim(
                    uow,
                    worker_id="w",
                    rooms={"default": 10, "urgent": 10, "bulk": 1},
                    now=utcnow(),
                    lease_seconds=60,
                    dispatch="poll",
                )

        # one statement, yet per queue: its room, its priority order; bulk had no room
        assert [t.id for t in claimed] == [default[1].id, default[3].id, urgent[0].id]
        assert all(t.status == "processing" and t.attempts == 1 for t in claimed)
        assert [t.id for t in again] == [default[2].id, default[0].id, bulk[0].id]


async def create(client: httpx.AsyncClient, **body: Any) -> str:
    response = await client.post(BASE, json=body, headers=user())
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def wait_finished(client: httpx.AsyncClient, task_id: str, timeout: float = 15) -> Any:
    async def finished() -> dict[str, Any] | None:
        body: dict[str, Any] = (await client.get(f"{BASE}/{task_id}", headers=user())).json()
        return body if body["status"] in FINISHED else None

    return await wait_until(finished, timeout=timeout)


async def attempts_of(client: httpx.AsyncClient, task_id: str) -> list[tuple[int, str]]:
    body = (await client.get(f"{BASE}/{task_id}/attempts", headers=user())).json()
    return [(a["attempt"], a["outcome"]) for a in body]


class TestRetries:
    async def test_a_failing_handler_is_retried_until_it_succeeds(
        self, embedded: httpx.AsyncClient
    ) -> None:
        task_id = await create(embedded, taskType="fail", params={"untilAttempt": 3})
        task = await wait_finished(embedded, task_id)
        assert task["status"] == "completed"
        assert task["retryCount"] == 2
        assert task["attempts"] == 3
        assert task["errorMessage"] is None
        assert await attempts_of(embedded, task_id) == [
            (1, "retried"),
            (2, "retried"),
            (3, "completed"),
        ]

    async def test_a_permanent_failure_fails_at_once_with_its_message(
        self, embedded: httpx.AsyncClient
    ) -> None:
        task_id = await create(
            embedded, taskType="fail", params={"permanent": True, "message": "bad input file"}
        )
        task = await wait_finished(embedded, task_id)
        assert task["status"] == "failed"
        assert task["errorMessage"] == "bad input file"
        assert task["retryCount"] == 0
        assert await attempts_of(embedded, task_id) == [(1, "failed")]

    async def test_retries_stop_at_max_retries(self, embedded: httpx.AsyncClient) -> None:
        task_id = await create(
            embedded, taskType="fail", maxRetries=1, params={"message": "flaky upstream"}
        )
        task = await wait_finished(embedded, task_id)
        assert task["status"] == "failed"
        assert task["retryCount"] == 1
        assert "flaky upstream" in task["errorMessage"]
        assert "gave up after 1 retries" in task["errorMessage"]
        assert await attempts_of(embedded, task_id) == [(1, "retried"), (2, "failed")]

    async def test_an_unknown_task_type_fails_once_with_a_clear_message(
        self, embedded: httpx.AsyncClient
    ) -> None:
        resources = embedded.app.state.resources  # type: ignore[attr-defined]
        unlisted = await insert_unlisted(resources.sessionmaker, "teleport", entity_type="product")
        task_id = str(unlisted.id)
        resources.relay.kick()  # its `created` event rings the worker beside the API
        task = await wait_finished(embedded, task_id)
        assert task["status"] == "failed"
        assert "no handler is registered for taskType='teleport'" in task["errorMessage"]
        assert task["retryCount"] == 0
        assert await attempts_of(embedded, task_id) == [(1, "failed")]


class TestCancelWhileRunning:
    async def test_cancel_stops_the_handler_at_its_next_progress_tick(
        self, embedded: httpx.AsyncClient
    ) -> None:
        task_id = await create(embedded, taskType="sleep", params={"seconds": 30})
        url = f"{BASE}/{task_id}"

        async def processing() -> bool:
            body = (await embedded.get(url, headers=user())).json()
            return bool(body["status"] == "processing")

        await wait_until(processing)
        cancelled = await embedded.post(f"{url}/cancel", headers=user())
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "processing"
        assert cancelled.json()["cancelRequested"] is True

        async def stopped() -> dict[str, Any] | None:
            body: dict[str, Any] = (await embedded.get(url, headers=user())).json()
            return body if body["status"] == "cancelled" else None

        task = await wait_until(stopped, timeout=3)  # the sleep handler reports every second
        assert task["completedAt"] is not None
        events = (await embedded.get(f"{url}/events", headers=user())).json()
        assert [e["eventType"].rsplit(".", 1)[1] for e in events] == [
            "created",
            "started",
            "cancel_requested",
            "cancelled",
        ]
        assert await attempts_of(embedded, task_id) == [(1, "cancelled")]


@pytest.mark.postgres_only
@pytest.mark.parametrize("dialect", ["postgresql"])
class TestStopDuringAClaim:
    async def test_tasks_claimed_while_stopping_are_stopped_and_released_too(
        self, database_url: str, tmp_path: Path
    ) -> None:
        """A claim still in the database when stop() is called returns tasks afterwards: they
        are stopped with the others and handed back, not left running past the grace."""
        ran: list[tuple[UUID, str]] = []
        async with (
            open_recording(database_url, tmp_path / "w", worker_id="stopping") as resources,
            open_recording(database_url, tmp_path / "lock") as locker,
        ):
            ids = [(await make_task(resources, "record")).id for _ in range(3)]
            runner = Runner(resources, recording_registry(resources, ran, pause=60))
            async with locker.engine.connect() as blocker:
                await blocker.execute(text("LOCK TABLE tasks IN EXCLUSIVE MODE"))  # no UPDATEs
                loop = asyncio.create_task(runner.run())
                runner.wake("push")
                await wait_until(lambda: _claim_blocked(locker), timeout=10, interval=0.05)
                stopping = asyncio.create_task(runner.stop(grace=0.2))
                await asyncio.sleep(0.2)  # stop() is waiting for the claim
                await blocker.rollback()  # the claim goes through now
            await asyncio.wait_for(stopping, timeout=15)
            await asyncio.gather(loop, return_exceptions=True)
            assert len(ran) == 3  # the claimed tasks did start ...
            statuses = {(await load_task(resources, i)).status for i in ids}
            assert statuses == {"pending"}  # ... and were handed back at the stop


async def _claim_blocked(resources: Resources) -> bool:
    async with resources.engine.connect() as conn:
        waiting = await conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                # the claim's text starts with its candidates (pg_stat_activity keeps 1 kB)
                " WHERE wait_event_type = 'Lock' AND query LIKE 'WITH claim\\_%'"
            )
        )
        return bool(waiting.scalar_one())
