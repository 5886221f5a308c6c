"""No answer leaves before its transaction has committed; a failed commit is the answer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import event, exc as sa_exc, func, select
from sqlalchemy.ext.asyncio import create_async_engine

from service.db.engine import create_sessionmaker, session_scope
from service.db.tables import outbox_table, tasks_table
from tests.fixtures.app import SERVICE, user
from tests.fixtures.database import free_port
from tests.integration.api.support import BASE, assert_problem, create, failing_creates, start

ALICE = user("alice")


class CommitFault:
    """Makes the next commits of an engine fail, as a database that vanished would."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.armed = False
        self.fired = 0

    def __call__(self, _connection: Any) -> None:
        if self.armed:
            self.fired += 1
            raise self.error


@pytest.fixture
def commit_fault(api: httpx.AsyncClient) -> Iterator[CommitFault]:
    """Fails commits of the app's engine (the "commit" event fires just before COMMIT)."""
    lost = sa_exc.OperationalError(
        "COMMIT", {}, ConnectionResetError(104, "Connection reset by peer")
    )
    fault = CommitFault(lost)
    engine = api.app.state.resources.engine.sync_engine  # type: ignore[attr-defined]
    event.listen(engine, "commit", fault)
    yield fault
    event.remove(engine, "commit", fault)


async def _stored(api: httpx.AsyncClient) -> tuple[int, int]:
    resources = api.app.state.resources  # type: ignore[attr-defined]
    async with session_scope(resources.sessionmaker) as session:
        tasks = (await session.execute(select(func.count()).select_from(tasks_table))).scalar()
        outbox = (await session.execute(select(func.count()).select_from(outbox_table))).scalar()
    return int(tasks or 0), int(outbox or 0)


class TestCommitFailure:
    async def test_a_create_whose_commit_fails_is_a_503_and_nothing_exists(
        self, api: httpx.AsyncClient
    ) -> None:
        async with failing_creates(api.app.state.resources):  # type: ignore[attr-defined]
            response = await api.post(BASE, json={"taskType": "noop"}, headers=ALICE)

        body = assert_problem(response, 503)
        assert int(response.headers["Retry-After"]) > 0
        assert "nothing was changed" in body["detail"]
        assert await _stored(api) == (0, 0)
        listed = await api.get(BASE, headers=ALICE)
        assert listed.json()["items"] == []

    @pytest.mark.parametrize(
        ("method", "path", "body"),
        [
            ("post", "/{id}/cancel", None),
            ("delete", "/{id}", None),
        ],
    )
    async def test_every_write_route_answers_only_after_its_commit(
        self,
        api: httpx.AsyncClient,
        commit_fault: CommitFault,
        method: str,
        path: str,
        body: dict[str, Any] | None,
    ) -> None:
        task = await create(api, ALICE, taskType="noop")
        commit_fault.armed = True
        response = await api.request(
            method.upper(), BASE + path.format(id=task["id"]), json=body, headers=ALICE
        )
        commit_fault.armed = False

        assert_problem(response, 503)
        again = await api.get(f"{BASE}/{task['id']}", headers=ALICE)
        assert again.status_code == 200
        assert again.json()["status"] == "pending"  # the change was rolled back

    async def test_progress_from_an_executor_is_not_acknowledged_when_lost(
        self, api: httpx.AsyncClient, commit_fault: CommitFault
    ) -> None:
        task = await create(api, ALICE, taskType="noop")
        await start(api.app.state.resources, task["id"])  # type: ignore[attr-defined]
        commit_fault.armed = True
        response = await api.patch(
            f"{BASE}/{task['id']}/progress", json={"progress": 10}, headers=SERVICE
        )
        commit_fault.armed = False

        assert_problem(response, 503)
        again = await api.get(f"{BASE}/{task['id']}", headers=ALICE)
        assert again.json()["progress"] == 0

    async def test_a_failure_that_is_not_an_outage_is_a_problem_500(
        self, api: httpx.AsyncClient
    ) -> None:
        # XX000: PostgreSQL's internal error; on SQLite a RuntimeError at commit
        async with failing_creates(api.app.state.resources, "XX000"):  # type: ignore[attr-defined]
            try:
                response = await api.post(BASE, json={"taskType": "noop"}, headers=ALICE)
            except (RuntimeError, asyncpg.InternalServerError):
                pass  # the test client may re-raise what the server logs as unexpected
            else:
                assert_problem(response, 500)
        assert await _stored(api) == (0, 0)


class TestDatabaseAway:
    async def test_requests_answer_503_while_the_database_cannot_be_reached(
        self, api: httpx.AsyncClient
    ) -> None:
        """An engine pointed at nothing: every route that needs the database answers 503."""
        resources = api.app.state.resources  # type: ignore[attr-defined]
        real, real_engine = resources.sessionmaker, resources.engine
        dead = create_async_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/none")
        resources.sessionmaker = create_sessionmaker(dead)
        resources.engine = dead  # PostgreSQL's creates go to its driver (statement units)
        try:
            created = await api.post(BASE, json={"taskType": "noop"}, headers=ALICE)
            listed = await api.get(BASE, headers=ALICE)
            ready = await api.get("/health/ready")
        finally:
            resources.sessionmaker, resources.engine = real, real_engine
            await dead.dispose()
        for response in (created, listed):
            assert_problem(response, 503)
            assert int(response.headers["Retry-After"]) > 0
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"]["status"] == "down"
        # and back: the same app serves again without a restart
        assert (await api.post(BASE, json={"taskType": "noop"}, headers=ALICE)).status_code == 201
