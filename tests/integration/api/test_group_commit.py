"""Creates that arrive together share one commit, and each is answered only after it."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from asyncpg.connection import LoggedQuery
from sqlalchemy import event, select, text

from service.bootstrap import Resources
from service.db.repositories import outbox as outbox_rows
from service.db.repositories.history import HistoryRepository
from service.db.repositories.outbox import OutboxRecord
from service.db.repositories.tasks import TaskRepository
from service.db.tables import outbox_table
from service.db.unit_of_work import Facts, statement_unit
from service.domain.callers import Caller
from service.domain.events import EventType
from service.domain.tasks import TaskRecord
from service.usecases import tasks as task_usecases
from tests.fixtures.app import user
from tests.integration.api.support import BASE, assert_problem, counts, failing_creates

ALICE = user("alice")


async def _create_many(api: httpx.AsyncClient, n: int) -> list[httpx.Response]:
    return await asyncio.gather(
        *(api.post(BASE, json={"taskType": "noop"}, headers=ALICE) for _ in range(n))
    )


class TestGroupCommit:
    async def test_concurrent_creates_share_commits_and_each_is_stored_once(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        app_resources: Resources = api.app.state.resources  # type: ignore[attr-defined]
        responses = await _create_many(api, 40)
        assert [r.status_code for r in responses] == [201] * 40
        ids = {r.json()["id"] for r in responses}
        assert len(ids) == 40
        assert await counts(resources) == {"tasks": 40, "events": 40, "outbox": 40}
        creates = app_resources.creates
        assert creates.tasks == 40
        assert creates.groups < 40  # some commits carried several creates
        for task_id in list(ids)[:5]:
            got = await api.get(f"{BASE}/{task_id}", headers=ALICE)
            assert got.json()["status"] == "pending"

    async def test_a_group_whose_commit_fails_answers_every_create_with_503(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        async with failing_creates(api.app.state.resources):  # type: ignore[attr-defined]
            responses = await _create_many(api, 12)
        for response in responses:
            assert_problem(response, 503)
        assert await counts(resources) == {"tasks": 0, "events": 0, "outbox": 0}
        after = await _create_many(api, 3)  # and the next ones go through
        assert [r.status_code for r in after] == [201] * 3

    async def test_a_create_alone_is_one_statement_on_postgresql(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        """PostgreSQL: its task, event and outbox row in one INSERT that commits itself (one
        round trip: no BEGIN, no COMMIT); SQLite writes the three rows with three statements."""
        app_resources: Resources = api.app.state.resources  # type: ignore[attr-defined]
        engine = app_resources.engine.sync_engine
        executed: list[tuple[object, str]] = []

        def on_execute(connection: object, _cursor: object, statement: str, *_: object) -> None:
            executed.append((connection, statement))

        def on_query(query: LoggedQuery) -> None:  # what asyncpg itself runs
            executed.append((query.conn_addr, query.query))

        def on_checkout(dbapi_connection: Any, *_: object) -> None:
            dbapi_connection.driver_connection.add_query_logger(on_query)

        def on_checkin(dbapi_connection: Any, *_: object) -> None:
            if dbapi_connection is not None:
                dbapi_connection.driver_connection.remove_query_logger(on_query)

        now = datetime.now(UTC)
        new = task_usecases.NewTask(task_type="noop")
        task = task_usecases.prepare(Caller("alice"), new, catalog=resources.catalog, now=now)
        postgres = engine.dialect.name == "postgresql"
        hooks: list[tuple[Any, str, Callable[..., None]]] = [
            (engine, "before_cursor_execute", on_execute)
        ]
        if postgres:
            hooks += [(engine.pool, "checkout", on_checkout), (engine.pool, "checkin", on_checkin)]
        for target, name, hook in hooks:
            event.listen(target, name, hook)
        try:
            await app_resources.creates.store(task, now=now)
        finally:
            for target, name, hook in hooks:
                event.remove(target, name, hook)
        if postgres:
            # not through SQLAlchemy at all, and one query on its connection: the insert
            assert not [s for _, s in executed if "INSERT INTO tasks" in s and "$" not in s]
            [writer] = {c for c, s in executed if "INSERT INTO tasks" in s}
            # asyncpg reads a type it meets once per connection (pg_type, and the jit setting)
            mine = [s for c, s in executed if c is writer and "pg_type" not in s and "jit" not in s]
            assert len(mine) == 1, mine
            assert "INSERT INTO task_events" in mine[0]
            assert "INSERT INTO outbox" in mine[0]
        else:
            # the app's relay runs meanwhile: the create's statements are its connection's
            [writer] = {c for c, s in executed if "INSERT INTO tasks" in s}
            mine = [s for c, s in executed if c is writer and s.startswith(("INSERT", "WITH"))]
            assert len(mine) == 3, mine
        assert await counts(resources) == {"tasks": 1, "events": 1, "outbox": 1}

    async def test_tasks_stored_together_read_back_as_they_were_written(
        self, resources: Resources
    ) -> None:
        """Every column of every task of a group, JSON and times included (PostgreSQL writes a
        group as one array per column)."""
        now = datetime.now(UTC)
        written = _varied(resources, now, started=True)
        async with resources.unit() as uow:
            await task_usecases.store(uow, written, now=now)
            announced = list(uow.facts.outbox)  # what the relay is handed, with the ids
        await _assert_read_back(resources, written, announced)

    @pytest.mark.postgres_only
    @pytest.mark.parametrize("dialect", ["postgresql"])
    @pytest.mark.parametrize("started", [False, True], ids=["new", "one-not-new"])
    async def test_a_group_written_alone_reads_back_as_written(
        self, resources: Resources, started: bool
    ) -> None:
        """The group commit's own statement (PostgreSQL): what every new task starts with goes
        as constants; a group with a task that does not start as new ones do (here: with a
        result) goes as arrays of every column. Either way each row reads back as written, and
        the outbox rows are claimed for the relay of the process that wrote them."""
        now = datetime.now(UTC)
        written = _varied(resources, now, started=started)
        facts: list[Facts] = []
        async with statement_unit(resources.engine, facts.append) as unit:
            await task_usecases.store_alone(unit, written, now=now)
        [handed] = facts
        await _assert_read_back(resources, written, handed.outbox)
        claim = now + timedelta(seconds=outbox_rows.CLAIM_SECONDS)
        assert {r.claimed_until for r in handed.outbox} == {claim}
        async with resources.engine.connect() as connection:
            claims = (await connection.execute(select(outbox_table.c.claimed_until))).scalars()
            assert set(claims) == {claim}

    async def test_each_task_of_a_group_has_its_first_event_at_its_own_creation(
        self, resources: Resources
    ) -> None:
        """A group is written with the time of its first create; each task's created event and
        outbox row keep its own time (a stream orders what it shows by them)."""
        start = datetime.now(UTC)
        new = task_usecases.NewTask(task_type="noop")
        tasks = [
            task_usecases.prepare(
                Caller("alice"), new, catalog=resources.catalog, now=start + timedelta(seconds=i)
            )
            for i in range(4)
        ]
        await asyncio.gather(*(resources.creates.store(t, now=t.created_at) for t in tasks))
        assert resources.creates.tasks == 4
        async with resources.unit() as uow:
            outbox = {
                r.task_id: r.created_at
                for r in (await uow.session.execute(select(outbox_table))).all()
            }
            for task in tasks:
                [created] = await HistoryRepository(uow.session).events(task.id)
                assert created.created_at == task.created_at
                assert outbox[task.id] == task.created_at


def _varied(resources: Resources, now: datetime, *, started: bool) -> list[TaskRecord]:
    """Five new tasks whose every field a create may set differs (JSON, long text, huge
    numbers, times); `started`: the last has a result, as no new task does."""
    new = task_usecases.NewTask(task_type="noop")
    written = []
    for i in range(5):
        task = task_usecases.prepare(Caller("alice"), new, catalog=resources.catalog, now=now)
        written.append(
            dataclasses.replace(
                task,
                params={
                    "n": i,
                    "big": 2**70,
                    "nested": {"list": [1, "two", None]},
                    "é": "ü",
                    "odd": 'q " b \\ n \n t \t 🚀',
                },
                tags=[f"tag-{i}", "common"],
                name=f'task {i} "quoted" \\ 🚀' if i % 2 else None,
                description="x" * 2000 if i == 3 else None,
                result={"rows": i} if started and i == 4 else None,
                notification_settings={"email": ["ops@example.com"]} if i == 1 else None,
                file_name="in.csv" if i == 2 else None,
                file_size=2**40 if i == 2 else None,
                scheduled_at=now + timedelta(hours=i) if i % 2 else None,
                idempotency_key=f"key-{i}",
            )
        )
    return written


async def _assert_read_back(
    resources: Resources, written: list[TaskRecord], announced: list[OutboxRecord]
) -> None:
    """Each task reads back as written, with its created event and its outbox row (as the
    relay was handed it: its id is its task's row, in the tasks' order)."""
    async with resources.unit() as uow:
        repo = TaskRepository(uow.session)
        for task in written:
            assert await repo.get(task.id) == task
            [created] = await HistoryRepository(uow.session).events(task.id)
            assert created.event_type == EventType.CREATED.value
            assert created.to_status == "pending"
            assert created.from_status is None
        rows = (await uow.session.execute(select(outbox_table))).all()
    assert [r.task_id for r in announced] == [t.id for t in written]
    by_id = {row.id: row for row in rows}
    for record in announced:
        row = by_id[record.id]
        assert (row.task_id, row.topic, row.payload) == (
            record.task_id,
            record.topic,
            record.payload,
        )
        assert row.payload["id"] == str(record.task_id)
        assert row.published_at is None
        assert row.attempts == 0
        assert row.subject is None


@pytest.mark.postgres_only
@pytest.mark.parametrize("dialect", ["postgresql"])
async def test_the_relay_can_wait_for_the_group_being_written(resources: Resources) -> None:
    """`next_commit` returns at once with no group under way, waits for the one under way (so
    the relay drains its rows with the last group's), and never longer than it is told."""
    creates = resources.creates
    await asyncio.wait_for(creates.next_commit(5.0), 0.5)  # nothing under way
    task = task_usecases.prepare(
        Caller("alice"),
        task_usecases.NewTask(task_type="noop"),
        catalog=resources.catalog,
        now=datetime.now(UTC),
    )
    async with resources.engine.connect() as other:
        await other.execute(text("LOCK TABLE outbox IN EXCLUSIVE MODE"))  # the group waits
        stored = asyncio.create_task(creates.store(task, now=task.created_at))
        await asyncio.sleep(0.2)
        loop = asyncio.get_running_loop()
        began = loop.time()
        await creates.next_commit(0.3)
        assert loop.time() - began >= 0.25  # told 0.3 s: it waited that long, no more
        assert not stored.done()
        waiting = asyncio.create_task(creates.next_commit(30.0))
        await asyncio.sleep(0.1)
        assert not waiting.done()
        await other.rollback()  # the lock goes: the group commits
    await asyncio.wait_for(waiting, 5)
    await stored
