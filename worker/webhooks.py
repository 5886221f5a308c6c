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
from dataclasses import dataclass
from typing import Protocol

from service.bootstrap import Resources
from service.clock import utcnow
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


@dataclass(frozen=True, slots=True)
class Answer:
    status_code: int
    excerpt: str


class Sender(Protocol):
    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer: ...

    async def close(self) -> None: ...


class WebhookDeliverer:
    """The worker's loop over due webhook deliveries."""

    def __init__(self, resources: Resources, sender: Sender | None = None) -> None:
        self.resources = resources
        self.settings = resources.settings
        self._sender = sender
        self.wake = asyncio.Event()
        self.delivered = 0
        self.failed = 0

    @property
    def sender(self) -> Sender:
        """Built at the first delivery: the HTTP client stack (httpcore, and trio wherever it
        is installed) costs a worker ~0.15 s of start-up, and most workers send no webhooks."""
        if self._sender is None:
            from worker.webhook_senders import build_sender

            self._sender = build_sender(self.settings)
        return self._sender

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
        import httpx  # loaded with the sender (webhook_senders), on the first delivery

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
        if self._sender is not None:
            await self._sender.close()
