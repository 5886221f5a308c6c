"""Tasks reach the worker through real sidecars and Redis Streams, routed by CEL rules."""

from __future__ import annotations

import json
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from service.db.engine import create_sessionmaker
from service.db.tables import attempts_table, outbox_table
from tests.e2e.dapr.conftest import APP_TOKEN, SERVICE_TOKEN, Stack, get_json, worker_health
from tests.fixtures.app import wait_until
from tests.integration.worker.support import insert_unlisted

TASKS = "/api/v1/operations/tasks"
ALICE = {"X-User-ID": "alice"}


async def create(stack: Stack, body: dict[str, Any]) -> dict[str, Any]:
    assert stack.client is not None
    response = await stack.client.post(TASKS, json=body, headers=ALICE)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def wait_status(
    stack: Stack, task_id: str, status: str, timeout: float = 30
) -> dict[str, Any]:
    assert stack.client is not None
    client = stack.client

    async def check() -> dict[str, Any] | None:
        body = (await client.get(f"{TASKS}/{task_id}", headers=ALICE)).json()
        return body if body["status"] == status else None

    result: dict[str, Any] = await wait_until(check, timeout=timeout, interval=0.1)
    return result


async def outbox_rows(stack: Stack, task_id: str) -> list[Any]:
    engine = create_async_engine(stack.database_url)
    try:
        async with engine.connect() as conn:
            stmt = select(outbox_table).where(outbox_table.c.task_id == task_id)
            return list((await conn.execute(stmt.order_by(outbox_table.c.id))).all())
    finally:
        await engine.dispose()


class TestRoundTrip:
    async def test_task_created_over_rest_is_delivered_and_completed(self, stack: Stack) -> None:
        subscriber = stack.add_subscriber(
            [stack.topic(t) for t in ("created", "started", "completed")]
        )
        worker = stack.add_worker()
        task = await create(stack, {"taskType": "noop"})
        await wait_status(stack, task["id"], "completed")

        rows = await outbox_rows(stack, task["id"])
        created_row = next(r for r in rows if r.topic == "operations.task.created")
        health = await wait_until(worker_health(worker))
        seen = [d for d in health["recentDeliveries"] if d["taskId"] == task["id"]]
        assert seen, health
        assert seen[0]["id"] == str(created_row.id)
        assert seen[0]["type"] == "operations.task.created"
        assert seen[0]["source"] == "common-operations"
        assert seen[0]["route"] == "/events/routed/noop"

        async def lifecycle() -> list[dict[str, Any]] | None:
            body = await get_json(subscriber.url + "/received")
            mine = [e for e in body["events"] if e.get("subject") == task["id"]]
            return mine if len(mine) >= 3 else None

        events = await wait_until(lifecycle, timeout=20)
        assert [e["type"] for e in events] == [
            "operations.task.created",
            "operations.task.started",
            "operations.task.completed",
        ]
        assert [e["id"] for e in events] == [str(r.id) for r in rows]
        assert events[-1]["data"]["status"] == "completed"
        assert events[0]["data"]["id"] == task["id"]
        assert all(e["source"] == "common-operations" for e in events)

        attempts = (await stack.client.get(f"{TASKS}/{task['id']}/attempts", headers=ALICE)).json()  # type: ignore[union-attr]
        assert [a["dispatch"] for a in attempts] == ["push"]

    async def test_worker_refuses_calls_without_the_app_token(self, stack: Stack) -> None:
        worker = stack.add_worker()
        async with httpx.AsyncClient(base_url=worker.url) as client:
            assert (await client.post("/events/unrouted", json={})).status_code == 401
            assert (await client.get("/dapr/subscribe")).status_code == 401
            ok = await client.get("/dapr/subscribe", headers={"dapr-api-token": APP_TOKEN})
            assert ok.status_code == 200


class TestRouting:
    async def test_types_reach_their_routes_and_unknown_types_fail_once(self, stack: Stack) -> None:
        worker = stack.add_worker()
        noop = await create(stack, {"taskType": "noop"})
        sleep = await create(stack, {"taskType": "sleep", "params": {"seconds": 0.1}})
        # a type the catalog does not list (POST /tasks refuses it), as an older version of the
        # service could have left in the table: its relay sweep publishes it within seconds
        engine = create_async_engine(stack.database_url)
        try:
            unlisted = await insert_unlisted(
                create_sessionmaker(engine), "mystery", entity_type="product"
            )
        finally:
            await engine.dispose()
        mystery = {"id": str(unlisted.id)}
        await wait_status(stack, noop["id"], "completed")
        await wait_status(stack, sleep["id"], "completed")
        failed = await wait_status(stack, mystery["id"], "failed")
        assert "no handler is registered" in failed["errorMessage"]
        assert "mystery" in failed["errorMessage"]

        health = await worker_health(worker)()
        routes = {d["taskId"]: d["route"] for d in health["recentDeliveries"]}
        assert routes[noop["id"]] == "/events/routed/noop"
        assert routes[sleep["id"]] == "/events/routed/sleep"
        assert routes[mystery["id"]] == "/events/unrouted"
        assert health["deliveries"]["/events/unrouted"] == 1
        assert failed["attempts"] == 1

    async def test_the_same_event_delivered_three_times_runs_the_task_once(
        self, stack: Stack
    ) -> None:
        worker = stack.add_worker()
        task = await create(stack, {"taskType": "sleep", "params": {"seconds": 1}})
        rows = await outbox_rows(stack, task["id"])
        created = rows[0]
        assert created.topic == "operations.task.created"
        body = {
            "specversion": "1.0",
            "id": str(created.id),
            "type": created.topic,
            "source": "common-operations",
            "subject": task["id"],
            "datacontenttype": "application/json",
            "data": created.payload,
        }
        async with httpx.AsyncClient(base_url=stack.api.dapr_url) as dapr:
            for _ in range(2):
                response = await dapr.post(
                    f"/v1.0/publish/pubsub/{stack.topic('created')}",
                    content=json.dumps(body),
                    headers={"Content-Type": "application/cloudevents+json"},
                )
                assert response.status_code == 204
        await wait_status(stack, task["id"], "completed")

        async def three_deliveries() -> bool:
            health = await worker_health(worker)()
            return bool(health["deliveries"].get("/events/routed/sleep", 0) >= 3)

        await wait_until(three_deliveries, timeout=20)
        engine = create_async_engine(stack.database_url)
        try:
            async with engine.connect() as conn:
                count = (
                    await conn.execute(
                        select(func.count())
                        .select_from(attempts_table)
                        .where(attempts_table.c.task_id == task["id"])
                    )
                ).scalar_one()
        finally:
            await engine.dispose()
        assert count == 1


class TestSubscriberRetries:
    async def test_retry_answers_are_redelivered_then_processed(self, stack: Stack) -> None:
        subscriber = stack.add_subscriber([stack.topic("completed")], SUB_RETRY_FIRST="2")
        stack.add_worker()
        task = await create(stack, {"taskType": "noop"})
        await wait_status(stack, task["id"], "completed")

        async def received() -> list[dict[str, Any]] | None:
            body = await get_json(subscriber.url + "/received")
            mine = [e for e in body["events"] if e.get("subject") == task["id"]]
            return mine or None

        events = await wait_until(received, timeout=30)
        assert len(events) == 1
        assert events[0]["deliveryAttempts"] == 3

    async def test_retries_exhausted_land_in_the_dead_letter_topic_and_are_recorded(
        self, stack: Stack
    ) -> None:
        stack.add_subscriber(
            [stack.topic("completed")], SUB_ALWAYS_RETRY="operations.task.completed"
        )
        stack.add_worker()
        task = await create(stack, {"taskType": "noop"})
        await wait_status(stack, task["id"], "completed")
        rows = await outbox_rows(stack, task["id"])
        completed_id = next(str(r.id) for r in rows if r.topic == "operations.task.completed")
        assert stack.client is not None
        client = stack.client

        async def recorded() -> list[dict[str, Any]] | None:
            response = await client.get(
                "/api/v1/operations/dead-letters", headers={"X-Service-Token": SERVICE_TOKEN}
            )
            letters = [d for d in response.json() if d["eventId"] == completed_id]
            return letters or None

        letters = await wait_until(recorded, timeout=60, interval=0.5)
        assert len(letters) == 1
        assert letters[0]["taskId"] == task["id"]
        assert letters[0]["eventType"] == "operations.task.completed"
