"""The app behind a real HTTP server (uvicorn on a free loopback port, in the test's event loop):
streams need a real socket (httpx's ASGI transport buffers a response until it ends)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn

from tests.fixtures.database import free_port


async def serve(client: httpx.AsyncClient) -> AsyncIterator[str]:
    port = free_port()
    config = uvicorn.Config(
        client.app,  # type: ignore[attr-defined]
        host="127.0.0.1",
        port=port,
        lifespan="off",  # the client fixture runs the app's lifespan
        log_config=None,
        ws="none",
        timeout_graceful_shutdown=2,
    )
    served = uvicorn.Server(config)
    serving = asyncio.create_task(served.serve())
    while not served.started:
        assert not serving.done(), serving.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        served.should_exit = True
        await serving


@pytest.fixture
async def server(embedded: httpx.AsyncClient) -> AsyncIterator[str]:
    """API and worker in one process (as `common-ops dev`), served on a free port."""
    async for url in serve(embedded):
        yield url


@pytest.fixture
async def api_server(api: httpx.AsyncClient) -> AsyncIterator[str]:
    """The API alone (no worker), served on a free port."""
    async for url in serve(api):
        yield url
