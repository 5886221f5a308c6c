"""The worker app's own HTTP face: the same health answers and access rule as the API, and
RFC 9457 problems, without the API's modules (nor FastAPI: worker/routes.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from service.config import Settings
from tests.fixtures.app import ADMIN, SERVICE, TOKEN, user
from tests.fixtures.tracing import named, spans, trace_id
from tests.integration.api.support import assert_problem
from worker.app import create_worker_app

__all__ = ["spans"]


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

    @pytest.mark.parametrize(
        "headers",
        [
            {},
            {"X-User-ID": ""},
            {"X-User-ID": "a" * 200},
            {"X-User-ID": "a\x01b"},
            {"X-User-ID": "élodie".encode("latin-1")},
            {"X-User-ID": "root", "X-User-Roles": "admin\x02"},
            {"X-User-ID": "root", "X-User-Roles": "a" * 600},
            {"X-User-ID": "root", "X-User-Roles": "a" * 3000},
            {"X-User-Roles": "a" * 3000},
            {"X-Service-Token": "wrong"},
            {"X-Service-Token": ""},
            {"Authorization": f"bearer {TOKEN}"},
            {"Authorization": f"Basic {TOKEN}"},
            {"Authorization": "Bearer"},
            {"Authorization": "Bearer wrong", "X-User-ID": "bob"},
        ],
    )
    async def test_detailed_reads_the_caller_as_the_api_does(
        self,
        worker_app: httpx.AsyncClient,
        api: httpx.AsyncClient,
        headers: dict[str, str | bytes],
    ) -> None:
        """The API reads the identity headers through FastAPI's dependencies, the worker
        without FastAPI (service.web.callers): the same answer, problem for problem."""
        raw = {k.encode(): v if isinstance(v, bytes) else v.encode() for k, v in headers.items()}
        answers = [await c.get("/health/detailed", headers=raw) for c in (api, worker_app)]
        ours, theirs = (
            (r.status_code, r.json() if r.status_code >= 400 else None) for r in answers
        )
        assert ours == theirs


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


class TestWorkerTracing:
    async def test_a_delivery_is_a_server_span_named_by_its_route_in_the_senders_trace(
        self, spans: InMemorySpanExporter, worker_app: httpx.AsyncClient
    ) -> None:
        """FastAPI opened the worker's request spans; its Starlette app has ObservedApp open them
        alike (the deliveries' spans join the trace of the task's create)."""
        sender = "0af7651916cd43dd8448eb211c80319c"
        task = {"id": "00000000-0000-0000-0000-000000000001", "taskType": "noop"}
        event = {"id": "e1", "data": task}
        response = await worker_app.post(
            "/events/routed/noop",
            json=event,
            headers={"traceparent": f"00-{sender}-b7ad6b7169203331-01"},
        )
        assert response.json() == {"status": "SUCCESS"}
        (span,) = named(spans, "POST ")
        assert (span.name, span.kind) == ("POST /events/routed/{task_type}", SpanKind.SERVER)
        assert trace_id(span) == sender
        assert span.attributes is not None
        assert span.attributes["http.route"] == "/events/routed/{task_type}"
        assert span.attributes["http.response.status_code"] == 200


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
