"""The HTTP side of webhook deliveries: a sender straight to the receiver (embedded) or
through the Dapr sidecar, each connecting only to addresses just checked (see webhooks.py).

A module of its own so a worker imports the HTTP client stack only when it first delivers.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

import httpcore
import httpx

from service.config import Settings
from worker.webhooks import ANSWER_EXCERPT, Answer, RefusedAddress, Sender, resolve_checked


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, but a connection goes only to an address just checked: the
    check and the connect see the same resolution (no DNS rebinding between them). TLS still
    verifies and sends SNI for the URL's host name."""

    def __init__(self, *, allow_private: bool) -> None:
        self.inner = httpcore.AnyIOBackend()
        self.allow_private = allow_private

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await resolve_checked(host, port, allow_private=self.allow_private)
        for address in addresses[:-1]:  # the next address when one does not answer
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout):
                continue
        return await self.inner.connect_tcp(
            addresses[-1], port, timeout, local_address, socket_options
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise RefusedAddress("unix sockets are not webhook targets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


async def _answer(response: httpx.Response) -> Answer:
    excerpt = b""
    if not 200 <= response.status_code < 300:
        async for chunk in response.aiter_bytes():
            excerpt += chunk
            if len(excerpt) >= ANSWER_EXCERPT:
                break
    return Answer(response.status_code, excerpt[:ANSWER_EXCERPT].decode(errors="replace"))


class DirectSender:
    """POSTs straight to the receiver (embedded mode)."""

    def __init__(self, settings: Settings) -> None:
        transport = httpx.AsyncHTTPTransport(trust_env=False)
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=50,
            network_backend=GuardedBackend(allow_private=settings.webhook_allow_private),
        )
        self.client = httpx.AsyncClient(
            transport=transport,
            follow_redirects=False,
            trust_env=False,
            timeout=settings.webhook_timeout_seconds,
        )

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        async with self.client.stream("POST", url, content=body, headers=headers) as response:
            return await _answer(response)

    async def close(self) -> None:
        await self.client.aclose()


class DaprSender:
    """POSTs through the Dapr sidecar: service invocation of a non-Dapr endpoint, the
    receiver's origin as the app id. The sidecar resolves the host again; the addresses are
    checked here first (see the module's docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.base = settings.dapr_http_endpoint.rstrip("/")
        self.allow_private = settings.webhook_allow_private
        headers = {"dapr-api-token": settings.dapr_api_token} if settings.dapr_api_token else {}
        self.client = httpx.AsyncClient(
            headers=headers,
            follow_redirects=False,
            trust_env=False,
            timeout=settings.webhook_timeout_seconds,
        )

    def invoke_url(self, url: str) -> str:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        method = parts.path.lstrip("/")
        query = f"?{parts.query}" if parts.query else ""
        return f"{self.base}/v1.0/invoke/{origin}/method/{method}{query}"

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        await resolve_checked(parts.hostname or "", port, allow_private=self.allow_private)
        async with self.client.stream(
            "POST", self.invoke_url(url), content=body, headers=headers
        ) as response:
            return await _answer(response)

    async def close(self) -> None:
        await self.client.aclose()


def build_sender(settings: Settings) -> Sender:
    via = settings.webhook_delivery
    if via == "auto":
        via = "dapr" if settings.publisher == "dapr" else "direct"
    return DaprSender(settings) if via == "dapr" else DirectSender(settings)
