"""Delivers webhook notifications: takes due deliveries, POSTs each signed body, records the
attempt, and tries again with exponential backoff until delivered or out of attempts.

Every replica runs this loop; a delivery is held by one of them at a time (a conditional
update in the database), so none is sent twice at once. Embedded, bodies go straight to the
receiver with httpx; in the Dapr shape through the sidecar's service invocation of a non-Dapr
endpoint (`/v1.0/invoke/<origin>/method/<path>`), so mTLS, resiliency and tracing of the mesh
apply. Either way the host must be on OPS_WEBHOOK_ALLOWED_HOSTS and, unless
OPS_WEBHOOK_ALLOW_PRIVATE, every address it resolves to public; redirects are not followed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import httpcore
import httpx

from service.bootstrap import Resources
from service.clock import utcnow
from service.config import Settings
from service.db.repositories.notifications import DeliveryRecord
from service.domain import webhooks
from service.usecases import notifications
from service.usecases.notifications import AttemptResult

logger = logging.getLogger(__name__)

USER_AGENT = "common-operations-webhooks/1"
#: a receiver's answer is read this far, for the attempt's error
ANSWER_EXCERPT = 300
BATCH = 20


class RefusedAddress(Exception):
    """The host resolves to an address webhooks may not reach."""


async def resolve_checked(host: str, port: int, *, allow_private: bool) -> list[str]:
    """The host's addresses, every one of them checked; refused if any is not allowed (a name
    that resolves to a public and a private address is refused as a whole)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise RefusedAddress(f"cannot resolve {host}: {error}") from error
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not allow_private:
        for address in addresses:
            reason = webhooks.address_refused(address)
            if reason is not None:
                raise RefusedAddress(f"{host} resolves to {reason}")
    return addresses


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


@dataclass(frozen=True, slots=True)
class Answer:
    status_code: int
    excerpt: str


class Sender(Protocol):
    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer: ...

    async def close(self) -> None: ...


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


class WebhookDeliverer:
    """The worker's loop over due webhook deliveries."""

    def __init__(self, resources: Resources, sender: Sender | None = None) -> None:
        self.resources = resources
        self.settings = resources.settings
        self.sender = sender or build_sender(resources.settings)
        self.wake = asyncio.Event()
        self.delivered = 0
        self.failed = 0

    async def run(self) -> None:
        while True:
            try:
                taken = await self.deliver_due()
            except Exception as error:  # the database away: try again at the next poll
                logger.warning(
                    "webhook deliveries not taken",
                    extra={"action": "webhooks.take_failed", "error": str(error)},
                )
                taken = 0
            if taken < BATCH:
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), self.settings.webhook_poll_seconds)

    async def deliver_due(self) -> int:
        """One round: take due deliveries, send them concurrently, record the attempts."""
        settings = self.settings
        hold = settings.webhook_timeout_seconds * 2 + 30
        async with self.resources.unit() as uow:
            taken = await notifications.take_due(uow, now=utcnow(), hold_seconds=hold, limit=BATCH)
            secrets = {
                owner: await notifications.signing_secret(uow, owner)
                for owner in {d.owner for d in taken}
            }
        if not taken:
            return 0
        results = await asyncio.gather(*(self.attempt(d, secrets[d.owner]) for d in taken))
        async with self.resources.unit() as uow:
            for delivery, result in zip(taken, results, strict=True):
                status = await notifications.settle_attempt(
                    uow,
                    delivery,
                    result,
                    now=utcnow(),
                    max_attempts=settings.webhook_max_attempts,
                    base=settings.webhook_retry_base_seconds,
                    cap=settings.webhook_retry_cap_seconds,
                )
                self.delivered += status == "delivered"
                self.failed += status == "failed"
        return len(taken)

    async def attempt(self, delivery: DeliveryRecord, own_secret: str | None) -> AttemptResult:
        """One POST of the delivery, signed; never raises."""
        started, clock = utcnow(), time.monotonic()

        def result(
            status: int | None = None, error: str | None = None, *, final: bool = False
        ) -> AttemptResult:
            took = int((time.monotonic() - clock) * 1000)
            return AttemptResult(started, took, status, error, final)

        settings = self.settings
        secret = own_secret or settings.webhook_signing_secret.get_secret_value()
        if not secret:
            return result(
                error="no signing secret: POST /api/v1/operations/webhooks/secret "
                "(or set OPS_WEBHOOK_SIGNING_SECRET)",
                final=True,
            )
        refused = webhooks.url_refused(
            delivery.url,
            settings.webhook_allowed_hosts,
            allow_private=settings.webhook_allow_private,
        )
        if refused is not None:
            return result(error=f"refused: {refused}", final=True)
        body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()
        if len(body) > settings.webhook_max_body_bytes:
            limit = settings.webhook_max_body_bytes
            return result(error=f"body of {len(body)} bytes is over {limit}", final=True)
        timestamp = int(time.time())
        message_id = str(delivery.id)
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            webhooks.HEADER_ID: message_id,
            webhooks.HEADER_TIMESTAMP: str(timestamp),
            webhooks.HEADER_SIGNATURE: webhooks.sign(secret, message_id, timestamp, body),
        }
        try:
            answer = await self.sender.post(delivery.url, body, headers)
        except RefusedAddress as error:
            return result(error=f"refused: {error}", final=True)
        except httpx.TimeoutException:
            return result(error=f"timed out after {settings.webhook_timeout_seconds}s")
        except httpx.HTTPError as error:
            return result(error=f"{type(error).__name__}: {error}"[:500])
        if 300 <= answer.status_code < 400:
            return result(answer.status_code, "redirects are not followed", final=True)
        if not 200 <= answer.status_code < 300:
            return result(answer.status_code, f"HTTP {answer.status_code}: {answer.excerpt}")
        return result(answer.status_code)

    async def close(self) -> None:
        await self.sender.close()
