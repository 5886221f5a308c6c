"""The runner while the database is away: claims in doubt, fenced leases, stale outcomes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import pytest

from service.bootstrap import Resources
from service.catalog.builtin import NoParams
from service.catalog.model import TaskType
from service.clock import utcnow
from service.db.tables import attempts_table, events_table
from service.domain.settlement import Ending
from service.domain.tasks import TaskRecord
from service.usecases import execution
from service.usecases.execution import Outcome, StaleOutcomes
from tests.fixtures.app import wait_until
from tests.fixtures.catalog import with_types
from tests.integration.worker.support import (
    CommitAnswerLost,
    Outage,
    load_task,
    make_task,
    open_resources,
    rows,
)
from worker.context import HandlerContext
from worker.registry import Handler, HandlerRegistry
from worker.runner import Runner


def registry_of(resources: Resources, **handlers: Handler) -> HandlerRegistry:
    """A registry of test-only types (added to the resources' catalog), one per handler."""
    with_types(resources, *(TaskType(name, "a test type", NoParams) for name in handlers))
    registry = HandlerRegistry(resources.catalog)
    for name, handler in handlers.items():
        registry.add(name, None, handler)
    return registry


@contextlib.asynccontextmanager
async def running(runner: Runner, *, heartbeat: bool = False) -> AsyncIterator[Runner]:
    loops = [asyncio.create_task(runner.run())]
    if heartbeat:
        loops.append(asyncio.create_task(runner.heartbeat_loop()))
    runner.wake("push")
    try:
        yield runner
    finally:
        await runner.stop(grace=0.5)
        for loop in loops:
            loop.cancel()
        await asyncio.gather(*loops, return_exceptions=True)


async def history(resources: Resources, task_id: UUID) -> tuple[list[str], list[tuple[int, str]]]:
    events = await rows(resources, events_table, task_id=task_id)
    attempts = await rows(resources, attempts_table, attempts_table.c.attempt, task_id=task_id)
    return (
        [e.event_type.rsplit(".", 1)[1] for e in events],
        [(a.attempt, a.outcome) for a in attempts],
    )


async def status_is(resources: Resources, task_id: UUID, status: str) -> bool:
    return bool((await load_task(resources, task_id)).status == status)


class TestClaimInDoubt:
    @pytest.mark.parametrize("applied", [True, False], ids=["committed", "rolled-back"])
    async def test_a_claim_whose_commit_answer_is_lost_runs_its_task_once(
        self, database_url: str, tmp_path: Path, applied: bool
    ) -> None:
        """The UPDATE returned the task, then the COMMIT failed: committed or not, the task
        runs once, in the first attempt, without waiting for its lease to run out."""
        ran: list[UUID] = []

        async def record(ctx: HandlerContext) -> None:
            ran.append(ctx.task.id)

        async with (
            open_resources(database_url, tmp_path, worker_id="w", lease_seconds=60) as r,
            open_resources(database_url, tmp_path) as observer,
        ):
            registry = registry_of(r, record=record)
            task = await make_task(r, "record")
            r.sessionmaker = CommitAnswerLost(r.sessionmaker, applied=applied)  # type: ignore[assignment]
            runner = Runner(r, registry)
            async with running(runner):
                await wait_until(lambda: status_is(observer, task.id, "completed"), timeout=10)
            assert ran == [task.id]
            events, attempts = await history(observer, task.id)
            assert events == ["created", "started", "completed"]
            assert attempts == [(1, "completed")]
            assert runner.claims.failures == 0


class TestFencing:
    async def test_a_run_whose_lease_cannot_be_renewed_stops_before_the_lease_ends(
        self, database_url: str, tmp_path: Path
    ) -> None:
        """The database goes away mid-run: the run stops before its lease ends (detect-timeouts
        may then hand the task to anyone), and the task is retried once it is back; the two
        runs never overlap."""
        runs: list[tuple[int, float, float | None]] = []
        loop = asyncio.get_running_loop()

        async def hang_once(ctx: HandlerContext) -> None:
            runs.append((ctx.task.attempts, loop.time(), None))
            try:
                if ctx.task.attempts == 1:
                    await asyncio.sleep(60)
            finally:
                attempt, started, _ = runs[-1]
                runs[-1] = (attempt, started, loop.time())

        lease = 1.5
        async with open_resources(database_url, tmp_path, worker_id="w", lease_seconds=lease) as r:
            registry = registry_of(r, **{"hang-once": hang_once})
            task = await make_task(r, "hang-once")
            outage = Outage(r.sessionmaker)
            r.sessionmaker = outage  # type: ignore[assignment]
            runner = Runner(r, registry)
            async with running(runner, heartbeat=True):
                await wait_until(lambda: _started(runs), timeout=10)
                await asyncio.sleep(lease)  # heartbeats keep it going meanwhile
                assert runner.running
                outage.down = True
                down_at = loop.time()
                await wait_until(lambda: _stopped(runner), timeout=lease * 2)
                assert loop.time() - down_at < lease
                outage.down = False
                assert (await load_task(r, task.id)).status == "processing"
                await wait_until(lambda: _lease_over(r, task.id), timeout=lease * 2)
                async with r.unit() as uow:
                    [handed_back] = await execution.expire_leases(
                        uow, now=utcnow(), policy=r.retry_policy, rng=r.rng
                    )
                runner.wake_at(handed_back.available_at)  # its `retried` doorbell
                await wait_until(lambda: status_is(r, task.id, "completed"), timeout=10)
            (first, _, a_end), (second, b_start, _) = runs
            assert (first, second) == (1, 2)
            assert a_end is not None
            assert a_end <= b_start
            _, attempts = await history(r, task.id)
            assert attempts == [(1, "lease_expired"), (2, "completed")]


async def _started(runs: list[tuple[int, float, float | None]]) -> bool:
    return bool(runs)


async def _stopped(runner: Runner) -> bool:
    return not runner.running


async def _lease_over(resources: Resources, task_id: UUID) -> bool:
    task = await load_task(resources, task_id)
    return bool(task.lease_until < utcnow())


class TestStaleOutcome:
    async def test_an_earlier_attempts_outcome_never_finishes_the_next_attempt(
        self, database_url: str, tmp_path: Path
    ) -> None:
        """Attempt 1's outcome waited for the database while its lease ran out; the task was
        handed back and the same worker claimed it again. Recording attempt 1's outcome now
        must not complete attempt 2, which is running."""
        async with open_resources(database_url, tmp_path, worker_id="w") as r:
            task = await make_task(r, "noop")
            t0 = utcnow()

            async def claim(at: timedelta) -> list[TaskRecord]:
                async with r.unit() as uow:
                    return await execution.claim(
                        uow,
                        worker_id="w",
                        now=t0 + at,
                        lease_seconds=1,
                        dispatch="poll",
                        queue=task.queue,
                        limit=1,
                    )

            [first] = await claim(timedelta(0))
            async with r.unit() as uow:
                await execution.expire_leases(
                    uow, now=t0 + timedelta(seconds=5), policy=r.retry_policy, rng=r.rng
                )
            [second] = await claim(timedelta(seconds=10))
            assert (first.attempts, second.attempts) == (1, 2)

            async def finish(run: TaskRecord, at: timedelta) -> list[TaskRecord]:
                async with r.unit() as uow:
                    return await execution.finish(
                        uow,
                        worker_id="w",
                        outcomes=[Outcome(run, Ending.COMPLETED, t0 + at)],
                        now=t0 + at,
                        policy=r.retry_policy,
                        rng=r.rng,
                    )

            with pytest.raises(StaleOutcomes) as stale:
                await finish(first, timedelta(seconds=11))
            assert stale.value.task_ids == [task.id]
            assert (await load_task(r, task.id)).status == "processing"
            [done] = await finish(second, timedelta(seconds=12))
            assert done.status == "completed"
            events, attempts = await history(r, task.id)
            assert events.count("completed") == 1
            assert attempts == [(1, "lease_expired"), (2, "completed")]


class TestOwnWriteLost:
    async def test_a_run_whose_own_progress_cannot_be_written_is_handed_back_without_a_retry(
        self, database_url: str, tmp_path: Path
    ) -> None:
        """The database goes away while a handler reports progress: the run stops and the task
        goes back to the queue once the database answers, its retries untouched (maxRetries 0
        would otherwise have failed it for good), and it runs again."""
        outage_seen = asyncio.Event()

        async def reporter(ctx: HandlerContext) -> None:
            if ctx.task.attempts > 1:
                return
            for tick in range(600):
                await ctx.report(progress=min(99, tick))
                await asyncio.sleep(0.05)
                if tick == 3:
                    outage_seen.set()

        async with open_resources(
            database_url, tmp_path, worker_id="w", lease_seconds=60, progress_interval_seconds=0
        ) as r:
            registry = registry_of(r, reporter=reporter)
            task = await make_task(r, "reporter", max_retries=0)
            outage = Outage(r.sessionmaker)
            observer = outage.sessionmaker
            r.sessionmaker = outage  # type: ignore[assignment]
            runner = Runner(r, registry)
            async with running(runner):
                await asyncio.wait_for(outage_seen.wait(), 10)
                outage.down = True
                await asyncio.sleep(1.0)  # the report fails; the outcome waits for the database
                outage.down = False
                r.sessionmaker = observer
                await wait_until(lambda: status_is(r, task.id, "completed"), timeout=15)
            row = await load_task(r, task.id)
            assert (row.retry_count, row.auto_retries) == (0, 0)
            _, attempts = await history(r, task.id)
            assert attempts == [(1, "released"), (2, "completed")]
