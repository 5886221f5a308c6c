"""A real grpc.aio server on a free loopback port, started by the API app's own lifespan over a
fresh database of each dialect, and a client of the generated stubs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from grpc import aio

from service.bootstrap import Resources
from service.rpc.gen import operations_pb2_grpc as pb_grpc
from tests.fixtures.database import free_port
from tests.integration.api.support import trail


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"grpc_port": free_port()}


@pytest.fixture
def app_resources(api: httpx.AsyncClient) -> Resources:
    """The resources of the app serving the calls (its store, its database)."""
    resources: Resources = api.app.state.resources  # type: ignore[attr-defined]
    return resources


@pytest.fixture
async def channel(
    api: httpx.AsyncClient, settings_overrides: dict[str, Any]
) -> AsyncIterator[aio.Channel]:
    """A channel to the gRPC server the `api` app started (its lifespan is running)."""
    async with aio.insecure_channel(f"127.0.0.1:{settings_overrides['grpc_port']}") as channel:
        yield channel


@pytest.fixture
def stub(channel: aio.Channel) -> pb_grpc.OperationsServiceAsyncStub:
    """The generated client on the channel (OperationsServiceAsyncStub is its type)."""
    return pb_grpc.OperationsServiceStub(channel)


@pytest.fixture
async def _trail(resources: Resources) -> AsyncIterator[None]:
    """After a test: one outbox row per task event, same task, same type, same order (every
    state change a call made went out through the outbox in its transaction)."""
    yield
    events, outbox = await trail(resources)
    assert outbox == events
