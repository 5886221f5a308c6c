"""The worker app's own HTTP face: the same health answers and access rule as the API, and
RFC 9457 problems, without the API's modules."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from service.config import Settings
from tests.fixtures.app import ADMIN, SERVICE, TOKEN, user
from tests.integration.api.support import assert_problem
from worker.app import create_worker_app


@pytest.fixture
async def worker_app(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_worker_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


class TestWorkerHealth:
    async def test_the_probes_answer_without_a_caller(self, worker_app: httpx.AsyncClient) -> None:
        for path in ("/health", "/health/live", "/health/ready"):
            response = await worker_app.get(path)
            assert response.status_code == 200, path
            assert response.json()["status"] == "ok"

    async def test_ready_checks_the_database(
        self, worker_app: httpx.AsyncClient, dialect: str
    ) -> None:
        database = (await worker_app.get("/health/ready")).json()["checks"]["database"]
        assert (database["status"], database["dialect"]) == ("up", dialect)

    async def test_detailed_is_for_admins_and_services_only(
        self, worker_app: httpx.AsyncClient
    ) -> None:
        assert_problem(await worker_app.get("/health/detailed"), 401, "unauthenticated")
        assert_problem(await worker_app.get("/health/detailed", headers=user()), 403, "forbidden")
        for caller in (ADMIN, SERVICE, {"Authorization": f"Bearer {TOKEN}"}):
            response = await worker_app.get("/health/detailed", headers=caller)
            assert response.status_code == 200

    async def test_detailed_shows_the_worker(self, worker_app: httpx.AsyncClient) -> None:
        checks = (await worker_app.get("/health/detailed", headers=SERVICE)).json()["checks"]
        assert {"database", "outboxRelay", "worker"} <= set(checks)
        assert {"workerId", "running", "capacity"} <= set(checks["worker"])


class TestWorkerProblems:
    async def test_an_unknown_path_is_a_404_problem(self, worker_app: httpx.AsyncClient) -> None:
        assert_problem(await worker_app.get("/nothing-here"), 404)

    async def test_a_wrong_method_names_the_allowed_ones(
        self, worker_app: httpx.AsyncClient
    ) -> None:
        response = await worker_app.delete("/health")
        assert_problem(response, 405)
        assert response.headers["Allow"] == "GET"  # the worker answers no OPTIONS

    async def test_its_description_holds_the_problem_schema(
        self, worker_app: httpx.AsyncClient
    ) -> None:
        spec = (await worker_app.get("/openapi.json")).json()
        assert "Problem" in spec["components"]["schemas"]
        assert "/health/detailed" in spec["paths"]


class TestWorkerMetrics:
    async def test_metrics_answer_without_a_caller_with_the_workers_gauges(
        self, worker_app: httpx.AsyncClient
    ) -> None:
        await worker_app.get("/health/live")
        response = await worker_app.get("/metrics")
        assert response.status_code == 200
        lines = response.text.splitlines()
        # embedded bus, no doorbells from another process: the poller polls fast
        assert "ops_worker_poller_fast 1.0" in lines
        assert "ops_worker_doorbells_healthy 0.0" in lines
        assert 'ops_worker_capacity{queue="default"} 16.0' in lines
        assert any(
            line.startswith(
                'ops_http_requests_total{app="worker",method="GET",route="/health/live"'
            )
            for line in lines
        )
        assert any(line.startswith('ops_queue_depth{queue="default"}') for line in lines)
