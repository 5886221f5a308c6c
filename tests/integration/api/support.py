"""API test helpers: create through the API, move tasks as a worker would, read the trail."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import event, exc as sa_exc, func, select, text

from service.bootstrap import Resources
from service.clock import utcnow
from service.db.tables import events_table, outbox_table, tasks_table
from service.domain.events import NOTIFICATION_REQUESTED, EventType
from service.domain.settlement import Ending
from service.domain.tasks import TaskRecord
from service.usecases import execution
from tests.fixtures.app import user

BASE = "/api/v1/operations/tasks"
PROBLEM = "application/problem+json"
WORKER = "test-worker"


async def create(
    client: httpx.AsyncClient, headers: dict[str, str] | None = None, **body: Any
) -> dict[str, Any]:
    """POST a task (default: a sleep task by alice) and return its body."""
    response = await client.post(
        BASE, json={"taskType": "sleep", **body}, headers=headers or user()
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def assert_problem(
    response: httpx.Response, status: int, type_suffix: str | None = None
) -> dict[str, Any]:
    """An RFC 9457 problem with that status; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("https://")
    assert body["title"]
    assert body["detail"]
    if type_suffix is not None:
        assert body["type"].endswith("/" + type_suffix), body["type"]
    return body


async def try_start(
    resources: Resources, task_id: str, *, queue: str = "default"
) -> TaskRecord | None:
    """Claim the due pending tasks of `queue` as a worker does; return `task_id` if claimed."""
    async with resources.unit() as uow:
        claimed = await execution.claim(
            uow,
            worker_id=WORKER,
            queue=queue,
            limit=100,
            now=utcnow(),
            lease_seconds=60,
            dispatch="poll",
        )
    return {str(t.id): t for t in claimed}.get(task_id)


async def start(resources: Resources, task_id: str, *, queue: str = "default") -> TaskRecord:
    """Put a pending task (alone in its queue) into processing."""
    task = await try_start(resources, task_id, queue=queue)
    assert task is not None, f"task {task_id} was not claimable"
    return task


async def finish(
    resources: Resources, task: TaskRecord, ending: str, error: str | None = None
) -> TaskRecord:
    """End a claimed run the way the runner does (`ending`: an Ending's value)."""
    async with resources.unit() as uow:
        [done] = await execution.finish(
            uow,
            worker_id=WORKER,
            outcomes=[execution.Outcome(task, Ending(ending), utcnow(), error=error)],
            now=utcnow(),
            policy=resources.retry_policy,
            rng=resources.rng,
        )
    return done


async def make_failed(
    resources: Resources, client: httpx.AsyncClient, *, error: str = "boom", **body: Any
) -> dict[str, Any]:
    task = await create(client, maxRetries=0, **body)
    await finish(
        resources, await start(resources, task["id"], queue=task["queue"]), "failed", error
    )
    return task


async def make_completed(
    resources: Resources, client: httpx.AsyncClient, **body: Any
) -> dict[str, Any]:
    task = await create(client, **body)
    await finish(resources, await start(resources, task["id"], queue=task["queue"]), "completed")
    return task


async def count(resources: Resources, table: Any) -> int:
    async with resources.sessionmaker() as session:
        return int((await session.execute(select(func.count()).select_from(table))).scalar_one())


async def counts(resources: Resources) -> dict[str, int]:
    """Rows in tasks, task_events and outbox."""
    return {
        "tasks": await count(resources, tasks_table),
        "events": await count(resources, events_table),
        "outbox": await count(resources, outbox_table),
    }


async def trail(resources: Resources) -> tuple[list[tuple[UUID, str]], list[tuple[UUID, str]]]:
    """(task id, event type) of every task event, and of every task's outbox row but progress
    notices, schedule events (a schedule's events have no task history: their key is the
    schedule), notifications, and events of no task (settings, queues)."""
    async with resources.sessionmaker() as session:
        events = await session.execute(
            select(events_table.c.task_id, events_table.c.event_type).order_by(events_table.c.id)
        )
        outbox = await session.execute(
            select(outbox_table.c.task_id, outbox_table.c.topic)
            .where(
                outbox_table.c.topic.notin_([EventType.PROGRESS.value, NOTIFICATION_REQUESTED]),
                outbox_table.c.topic.not_like("operations.schedule.%"),
                outbox_table.c.task_id.is_not(None),  # settings' and queues' events: no task's
            )
            .order_by(outbox_table.c.id)
        )
        return [tuple(r) for r in events], [tuple(r) for r in outbox]


async def event_types(
    client: httpx.AsyncClient, task_id: str, headers: dict[str, str] | None = None
) -> list[str]:
    response = await client.get(f"{BASE}/{task_id}/events", headers=headers or user())
    assert response.status_code == 200, response.text
    return [e["eventType"].rsplit(".", 1)[1] for e in response.json()]


@asynccontextmanager
async def failing_creates(resources: Resources, sqlstate: str = "08006") -> AsyncIterator[None]:
    """Creates fail where they are written, as a database that went away would fail them.

    PostgreSQL writes a create (or a group of them) as one statement that commits itself: a
    trigger on the outbox, the last of its three tables, fails it with `sqlstate` (08006,
    connection failure: an outage; XX000: a bug) after its tasks and events rows were written.
    SQLite writes them in a transaction whose COMMIT fails instead (as a lost connection).
    """
    if resources.engine.dialect.name == "postgresql":
        async with resources.engine.begin() as connection:
            await connection.execute(
                text(
                    "CREATE FUNCTION test_fail_write() RETURNS trigger LANGUAGE plpgsql AS"
                    f" $$ BEGIN RAISE EXCEPTION 'write lost' USING ERRCODE = '{sqlstate}'; END $$"
                )
            )
            await connection.execute(
                text(
                    "CREATE TRIGGER test_fail_write AFTER INSERT ON outbox"
                    " FOR EACH STATEMENT EXECUTE FUNCTION test_fail_write()"
                )
            )
        try:
            yield
        finally:
            async with resources.engine.begin() as connection:
                await connection.execute(text("DROP TRIGGER test_fail_write ON outbox"))
                await connection.execute(text("DROP FUNCTION test_fail_write()"))
        return
    lost: Exception = sa_exc.OperationalError(
        "COMMIT", {}, ConnectionResetError(104, "Connection reset by peer")
    )
    if not sqlstate.startswith("08"):
        lost = RuntimeError("a bug at commit time")

    def fail(_connection: object) -> None:
        raise lost

    engine = resources.engine.sync_engine
    event.listen(engine, "commit", fail)
    try:
        yield
    finally:
        event.remove(engine, "commit", fail)
