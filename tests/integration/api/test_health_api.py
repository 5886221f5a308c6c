"""Health probes and the API description: what the gateway, Kubernetes and people poll."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from service import __version__
from service.app import create_app
from service.config import Settings
from service.events.relay import OutboxRelay
from tests.fixtures.app import ADMIN, SERVICE, TOKEN, make_settings, user, wait_until
from tests.integration.api.support import assert_problem

API = "/api/v1/operations"


@pytest.fixture
async def no_database(
    dialect: str, database_url: str, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """The API started against a database that cannot be reached."""
    if dialect == "sqlite":
        broken = f"sqlite+aiosqlite:///{tmp_path / 'missing-dir' / 'sub' / 'ops.db'}"
    else:
        broken = (
            make_url(database_url)
            .set(database="ops_no_such_database")
            .render_as_string(hide_password=False)
        )
    settings: Settings = make_settings(broken, tmp_path)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        relay = app.state.resources.relay
        # Probe after the relay's first failed drain: on SQLite's one-connection pool a probe
        # that queues behind a failing connect waits out the 30 s pool timeout.
        await wait_until(lambda: _failed(relay))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def _failed(relay: OutboxRelay) -> bool:
    return relay.failures > 0


class TestLiveness:
    @pytest.mark.parametrize("path", ["/health", f"{API}/health"])
    async def test_health_answers_ok_without_a_caller(
        self, api: httpx.AsyncClient, path: str
    ) -> None:
        response = await api.get(path)
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ok"
        assert body["service"] == "common-operations"
        assert body["version"] == __version__
        assert body["time"]

    async def test_live_answers_ok(self, api: httpx.AsyncClient) -> None:
        response = await api.get("/health/live")
        assert response.status_code == 200
        assert response.json()["status"] == "ok"

    async def test_liveness_does_not_depend_on_the_database(
        self, no_database: httpx.AsyncClient
    ) -> None:
        assert (await no_database.get("/health/live")).status_code == 200


class TestReadiness:
    async def test_ready_with_the_database_up(self, api: httpx.AsyncClient, dialect: str) -> None:
        response = await api.get("/health/ready")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ok"
        database = body["checks"]["database"]
        assert database["status"] == "up"
        assert database["dialect"] == dialect
        assert database["outboxBacklog"] >= 0

    async def test_not_ready_without_the_database(self, no_database: httpx.AsyncClient) -> None:
        response = await no_database.get("/health/ready")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "unavailable"
        assert body["checks"]["database"]["status"] == "down"
        assert body["checks"]["database"]["error"]

    async def test_detailed_shows_database_publisher_and_relay(
        self, api: httpx.AsyncClient
    ) -> None:
        response = await api.get("/health/detailed", headers=ADMIN)
        assert response.status_code == 200
        checks = response.json()["checks"]
        assert checks["database"]["status"] == "up"
        assert checks["publisher"]["kind"] == "inprocess"
        assert set(checks["outboxRelay"]) >= {"published", "consecutiveFailures", "lastError"}

    async def test_detailed_is_for_admins_and_services_only(self, api: httpx.AsyncClient) -> None:
        assert_problem(await api.get("/health/detailed"), 401, "unauthenticated")
        response = await api.get("/health/detailed", headers=user("alice"))
        assert_problem(response, 403, "forbidden")
        assert "outboxRelay" not in response.text
        for caller in (ADMIN, SERVICE, {"Authorization": f"Bearer {TOKEN}"}):
            assert (await api.get("/health/detailed", headers=caller)).status_code == 200

    async def test_the_other_probes_stay_open(self, api: httpx.AsyncClient) -> None:
        for path in ("/health", "/health/live", "/health/ready"):
            assert (await api.get(path)).status_code == 200

    async def test_detailed_reports_a_database_outage(self, no_database: httpx.AsyncClient) -> None:
        response = await no_database.get("/health/detailed", headers=SERVICE)
        assert response.status_code == 503
        assert response.json()["checks"]["database"]["status"] == "down"


class TestApiDescription:
    async def test_docs_are_served(self, api: httpx.AsyncClient) -> None:
        response = await api.get("/docs")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert "swagger" in response.text.lower()

    async def test_openapi_lists_the_task_endpoints(self, api: httpx.AsyncClient) -> None:
        response = await api.get("/openapi.json")
        assert response.status_code == 200
        spec = response.json()
        assert spec["info"]["version"] == __version__
        paths = spec["paths"]
        assert set(paths[f"{API}/tasks"]) >= {"get", "post"}
        assert set(paths[f"{API}/tasks/{{task_id}}"]) >= {"get", "delete"}
        for action in ("cancel", "retry"):
            assert "post" in paths[f"{API}/tasks/{{task_id}}/{action}"]
        for history in ("events", "logs", "attempts"):
            assert "get" in paths[f"{API}/tasks/{{task_id}}/{history}"]
        assert "patch" in paths[f"{API}/tasks/{{task_id}}/progress"]
        assert "/health/ready" in paths

    async def test_an_unknown_path_is_a_404_problem(self, api: httpx.AsyncClient) -> None:
        response = await api.get(f"{API}/nothing-here")
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/problem+json")
