"""What runs around the service: standard health checking, reflection, the graceful stop with
the app's lifespan, and UNAVAILABLE (with RetryInfo) while the database cannot be reached."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import descriptor_pb2
from google.rpc import error_details_pb2
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from service.app import create_app
from service.rpc.gen import operations_pb2 as pb, operations_pb2_grpc as pb_grpc
from service.rpc.server import GrpcPortUnavailable
from tests.fixtures.app import make_settings
from tests.fixtures.database import free_port
from tests.integration.grpc.support import ALICE, refused

SERVICE = "api.operations.v1.OperationsService"


async def test_standard_health_checking(channel: aio.Channel) -> None:
    checks = health_pb2_grpc.HealthStub(channel)
    for service in ("", SERVICE):
        answer = await checks.Check(health_pb2.HealthCheckRequest(service=service))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    unknown = health_pb2.HealthCheckRequest(service="no.such.Service")
    await refused(checks.Check(unknown), grpc.StatusCode.NOT_FOUND)


async def test_reflection_lists_and_describes_the_service(channel: aio.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE),
    ]
    answers = [answer async for answer in stub.ServerReflectionInfo(iter(requests))]
    listed = {s.name for s in answers[0].list_services_response.service}
    assert {SERVICE, "grpc.health.v1.Health"} <= listed
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in answers[1].file_descriptor_response.file_descriptor_proto
    ]  # the file and its imports (struct, timestamp), as grpcurl needs them
    [ours] = [f for f in files if f.package == "api.operations.v1"]
    assert ours.name == "api/operations/v1/operations.proto"
    assert len(ours.service[0].method) == 11


async def test_the_server_stops_with_the_app(
    settings_overrides: dict[str, Any], database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    app = create_app(make_settings(database_url, tmp_path, grpc_port=port))
    async with aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.OperationsServiceStub(channel)
        async with app.router.lifespan_context(app):
            made = await stub.CreateTask(pb.CreateTaskRequest(task_type="noop"), metadata=ALICE)
            assert made.created
            probes = app.state.health_probes
            assert probes["grpc"]() == {"status": "up", "port": port}
        assert app.state.health_probes["grpc"]() == {"status": "down", "port": port}
        gone = stub.Health(pb.HealthRequest(), timeout=2)
        await refused(gone, grpc.StatusCode.UNAVAILABLE)  # nothing listens any more


@pytest.fixture
def unreachable(dialect: str, tmp_path: Path) -> str:
    """A database URL of the dialect that nothing answers: a closed port, a missing directory."""
    if dialect == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'gone' / 'operations.db'}"
    return f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/operations"


async def test_a_database_away_is_unavailable_with_retry_info(
    unreachable: str, tmp_path: Path
) -> None:
    port = free_port()
    app = create_app(make_settings(unreachable, tmp_path, grpc_port=port))
    async with app.router.lifespan_context(app), aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        stub = pb_grpc.OperationsServiceStub(ch)
        # One call after another: a gRPC aio call starts when it is made, and SQLite's pool has
        # one connection; a second call made while the first's connect attempt holds that slot
        # waits in SQLAlchemy's QueuePool for pool_timeout (30 s; a failed connect frees the
        # slot without waking a waiter) before it too is refused.
        calls: list[Callable[[], Awaitable[Any]]] = [
            lambda: stub.CreateTask(pb.CreateTaskRequest(task_type="noop"), metadata=ALICE),
            lambda: stub.ListTasks(pb.ListTasksRequest(), metadata=ALICE),
            lambda: stub.GetTask(
                pb.GetTaskRequest(id="0" * 8 + "-0000-0000-0000-" + "0" * 12), metadata=ALICE
            ),
        ]
        for call in calls:
            refusal = await refused(call(), grpc.StatusCode.UNAVAILABLE)
            assert "nothing was changed" in refusal.message
            assert refusal.reason == "UNAVAILABLE"
            retry = refusal.detail(error_details_pb2.RetryInfo)
            assert retry.retry_delay.seconds == 5  # REST's Retry-After
        health = await stub.Health(pb.HealthRequest())
        assert (health.status, health.checks["database"]) == ("unavailable", "down")
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as rest:
            response = await rest.get("/api/v1/operations/tasks", headers={"X-User-ID": "alice"})
            assert (response.status_code, response.headers["Retry-After"]) == (503, "5")


async def test_a_port_in_use_stops_the_start_with_a_clear_error(
    database_url: str, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        app = create_app(make_settings(database_url, tmp_path, grpc_port=port))
        with pytest.raises(GrpcPortUnavailable, match=f"127.0.0.1:{port} .*OPS_GRPC_PORT"):
            async with app.router.lifespan_context(app):
                pass
    running = [t for t in asyncio.all_tasks() if "OutboxRelay.run" in repr(t.get_coro())]
    assert not running  # the relay that had started was stopped again
