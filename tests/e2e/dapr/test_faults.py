"""Outages and replicas: Redis away, a sidecar killed, two workers, cron bindings."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from service.db.tables import attempts_table, events_table, job_runs_table, outbox_table
from tests.e2e.dapr.conftest import Stack, get_json, worker_health
from tests.e2e.dapr.test_delivery import ALICE, TASKS, create, wait_status
from tests.fixtures.app import wait_until


async def scalar(stack: Stack, stmt: Any) -> Any:
    engine = create_async_engine(stack.database_url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(stmt)).scalar_one()
    finally:
        await engine.dispose()


async def rows(stack: Stack, stmt: Any) -> list[Any]:
    engine = create_async_engine(stack.database_url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(stmt)).all())
    finally:
        await engine.dispose()


async def all_completed(stack: Stack, ids: list[str], timeout: float = 90) -> None:
    assert stack.client is not None
    client = stack.client

    async def done() -> bool:
        statuses = [(await client.get(f"{TASKS}/{i}", headers=ALICE)).json()["status"] for i in ids]
        return all(s == "completed" for s in statuses)

    await wait_until(done, timeout=timeout, interval=0.5)


async def outbox_drained(stack: Stack, timeout: float = 60) -> None:
    unpublished = (
        select(func.count()).select_from(outbox_table).where(outbox_table.c.published_at.is_(None))
    )

    async def drained() -> bool:
        return bool(await scalar(stack, unpublished) == 0)

    await wait_until(drained, timeout=timeout, interval=0.5)


async def assert_each_ran_once(stack: Stack, ids: list[str]) -> None:
    attempts = await rows(stack, select(attempts_table.c.task_id, attempts_table.c.outcome))
    per_task = Counter(str(a.task_id) for a in attempts if a.outcome == "completed")
    assert all(per_task[i] == 1 for i in ids), per_task


class TestRedisOutage:
    async def test_tasks_created_while_redis_is_down_complete_and_every_event_goes_out_once(
        self, stack: Stack
    ) -> None:
        subscriber = stack.add_subscriber([stack.topic("created"), stack.topic("completed")])
        worker = stack.add_worker()
        before = [(await create(stack, {"taskType": "noop"}))["id"] for _ in range(3)]
        await all_completed(stack, before)

        stack.redis.stop()
        during = [(await create(stack, {"taskType": "noop"}))["id"] for _ in range(10)]
        await all_completed(stack, during, timeout=25)  # the poller runs them: no pub/sub needed
        health = await worker_health(worker)()
        assert health["poller"]["mode"] == "fast", health
        assert health["claimedBy"]["poll"] >= 1
        await asyncio.sleep(max(0.0, 30 - 25))  # Redis stays away for (at least) 30 s in all
        stack.redis.start()

        await outbox_drained(stack)
        ids = before + during
        outbox = await rows(stack, select(outbox_table))
        events = await rows(stack, select(events_table))
        assert len(outbox) == len(events)  # one outbox row per state change, no duplicates
        assert len({r.id for r in outbox}) == len(outbox)

        wanted = {
            str(r.id)
            for r in outbox
            if r.topic in ("operations.task.created", "operations.task.completed")
        }

        async def delivered() -> bool:
            body = await get_json(subscriber.url + "/received")
            return wanted <= {e["id"] for e in body["events"]}

        await wait_until(delivered, timeout=60, interval=0.5)
        await assert_each_ran_once(stack, ids)


async def readiness(worker: Any, *, expect: int = 200) -> dict[str, Any]:
    """The worker's /health/ready checks once it answers `expect` (503: not ready)."""

    async def probe() -> dict[str, Any] | None:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(worker.url + "/health/ready")
        checks: dict[str, Any] = response.json()["checks"]
        return checks if response.status_code == expect else None

    result: dict[str, Any] = await wait_until(probe, timeout=20, interval=0.2)
    return result


class TestSidecarRestart:
    async def test_worker_sidecar_killed_and_restarted_mid_run_loses_nothing(
        self, stack: Stack
    ) -> None:
        worker = stack.add_worker()
        first = [
            (await create(stack, {"taskType": "sleep", "params": {"seconds": 0.3}}))["id"]
            for _ in range(10)
        ]
        assert (await readiness(worker))["sidecar"] == {"status": "up", "publisher": "dapr"}
        worker.sidecar.kill()
        second = [(await create(stack, {"taskType": "noop"}))["id"] for _ in range(10)]
        assert (await readiness(worker, expect=503))["sidecar"]["status"] == "down"
        await asyncio.sleep(2)
        worker.start_sidecar()
        ids = first + second
        await all_completed(stack, ids, timeout=60)
        await outbox_drained(stack)
        await assert_each_ran_once(stack, ids)


class TestReplicas:
    async def test_two_workers_run_every_task_once_and_each_cron_tick_once(
        self, stack: Stack
    ) -> None:
        workers = [stack.add_worker(), stack.add_worker()]
        ids = [(await create(stack, {"taskType": "noop"}))["id"] for _ in range(120)]
        await all_completed(stack, ids, timeout=60)
        await assert_each_ran_once(stack, ids)
        healths = [await worker_health(w)() for w in workers]
        assert all(h["claimed"] > 0 for h in healths), [h["claimed"] for h in healths]

        async def both_fired() -> list[list[dict[str, Any]]] | None:
            histories = [(await worker_health(w)())["jobHistory"] for w in workers]
            slots = [{(r["job"], r["slot"]) for r in h} for h in histories]
            return histories if len(slots[0] & slots[1]) >= 3 else None

        histories = await wait_until(both_fired, timeout=30, interval=0.5)
        outcomes: dict[tuple[str, int], list[str]] = defaultdict(list)
        for history in histories:
            for record in history:
                outcomes[(record["job"], record["slot"])].append(record["outcome"])
        shared = [o for o in outcomes.values() if len(o) == 2]
        assert shared
        assert all(sorted(o) == ["ok", "skipped"] for o in shared), shared
        runs = await rows(stack, select(job_runs_table.c.job, job_runs_table.c.slot))
        assert len(runs) == len({(r.job, r.slot) for r in runs})


class TestCronBinding:
    async def test_process_scheduled_fired_by_cron_starts_a_due_task(self, stack: Stack) -> None:
        stack.add_worker()
        at = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
        task = await create(
            stack, {"taskType": "sleep", "params": {"seconds": 3}, "scheduledAt": at}
        )
        assert task["status"] == "scheduled"
        running = await wait_status(stack, task["id"], "processing", timeout=20)
        assert datetime.fromisoformat(running["startedAt"]) >= datetime.fromisoformat(at)
        history = await rows(
            stack, select(events_table).where(events_table.c.task_id == task["id"])
        )
        promoted = [e for e in history if e.from_status == "scheduled"]
        assert [(e.to_status, e.actor) for e in promoted] == [("pending", "process-scheduled")]
        runs = await rows(
            stack, select(job_runs_table).where(job_runs_table.c.job == "process-scheduled")
        )
        assert any(r.outcome == "completed" and "1 scheduled" in (r.detail or "") for r in runs)
