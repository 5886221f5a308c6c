"""The app behind a real HTTP server (uvicorn on a free loopback port, in the test's event loop):
streams need a real socket (httpx's ASGI transport buffers a response until it ends)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.fixtures.serving import serving


async def serve(client: httpx.AsyncClient) -> AsyncIterator[str]:
    """The client's app (its fixture runs the lifespan); a stream left open gets 2 s to end."""
    async with serving(client.app, graceful_seconds=2) as url:  # type: ignore[attr-defined]
        yield url


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
