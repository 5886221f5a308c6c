"""Webhooks delivered by the embedded worker to a real HTTP receiver (uvicorn on a free port):
signed as a receiver verifies it, retried with backoff after a 500, every attempt on the task;
refused for private addresses at delivery time and for redirects."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from service.domain.webhooks import address_refused
from tests.fixtures.app import user, wait_until
from tests.fixtures.database import free_port
from tests.fixtures.serving import serving
from tests.integration.api.support import BASE, create

ALICE = user("alice")
SECRET_URL = "/api/v1/operations/webhooks/secret"
FAST = {
    "webhook_allow_private": True,
    "webhook_retry_base_seconds": 0.05,
    "webhook_retry_cap_seconds": 0.2,
    "webhook_poll_seconds": 0.05,
}


@dataclass
class Receiver:
    """A webhook receiver: answers 500 to the first `fail_first` requests, or redirects."""

    fail_first: int = 0
    redirect: bool = False
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    port: int = 0

    async def hook(self, request: Request) -> Response:
        self.received.append((dict(request.headers), await request.body()))
        if len(self.received) <= self.fail_first:
            return Response("not now", status_code=500)
        if self.redirect:
            return RedirectResponse("http://169.254.169.254/latest/meta-data", status_code=302)
        return Response("thanks")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


@pytest.fixture
async def receiver(request: pytest.FixtureRequest) -> AsyncIterator[Receiver]:
    hook = Receiver(**getattr(request, "param", {}))
    app = Starlette(routes=[Route("/hook", hook.hook, methods=["POST"])])
    hook.port = free_port()
    async with serving(app, port=hook.port):
        yield hook


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What a receiver does (Standard Webhooks): HMAC-SHA256 over "{id}.{timestamp}.{body}"
    with the secret's base64 part as the key, compared with each "v1,<base64>" signature."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    given = [s.removeprefix("v1,") for s in headers["webhook-signature"].split()]
    return any(hmac.compare_digest(expected, g) for g in given)


async def hooked_task(client: httpx.AsyncClient, url: str, **settings: Any) -> dict[str, Any]:
    notification = {"onCompletion": True, "channels": ["webhook"], "webhookUrl": url, **settings}
    return await create(client, ALICE, params={"seconds": 0}, notificationSettings=notification)


async def webhooks_when(
    client: httpx.AsyncClient, task_id: str, status: str
) -> list[dict[str, Any]]:
    async def settled() -> list[dict[str, Any]] | None:
        answer = await client.get(f"{BASE}/{task_id}/notifications", headers=ALICE)
        hooks: list[dict[str, Any]] = answer.json()["webhooks"]
        return hooks if hooks and all(h["status"] == status for h in hooks) else None

    found: list[dict[str, Any]] = await wait_until(settled, timeout=30)
    return found


class TestDelivered:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return FAST

    @pytest.mark.parametrize("receiver", [{"fail_first": 1}], indirect=True)
    async def test_signed_and_retried_after_a_500(
        self, embedded: httpx.AsyncClient, receiver: Receiver
    ) -> None:
        secret = (await embedded.post(SECRET_URL, headers=ALICE)).json()["secret"]
        task = await hooked_task(embedded, receiver.url)
        [webhook] = await webhooks_when(embedded, task["id"], "delivered")

        assert len(receiver.received) == 2
        (first, _), (second, body) = receiver.received
        assert first["webhook-id"] == second["webhook-id"] == webhook["id"]
        for headers, sent in receiver.received:
            assert verify(secret, headers, sent)
            assert headers["content-type"] == "application/json"
        assert not verify(secret, second, body + b" ")  # any change breaks it
        payload = json.loads(body)
        assert payload["reason"] == "completed"
        assert payload["task"]["id"] == task["id"]
        assert payload["task"]["status"] == "completed"

        assert (webhook["attempts"], webhook["lastStatusCode"]) == (2, 200)
        assert [a["statusCode"] for a in webhook["history"]] == [500, 200]
        assert webhook["history"][0]["error"] == "HTTP 500: not now"
        assert all(a["durationMs"] >= 0 for a in webhook["history"])


FALLBACK = "whsec_" + base64.b64encode(b"the service's own secret").decode()


class TestFallbackSecret:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {**FAST, "webhook_signing_secret": FALLBACK}

    async def test_the_services_secret_signs_for_users_without_one(
        self, embedded: httpx.AsyncClient, receiver: Receiver
    ) -> None:
        task = await hooked_task(embedded, receiver.url)
        await webhooks_when(embedded, task["id"], "delivered")
        [(headers, body)] = receiver.received
        assert verify(FALLBACK, headers, body)


class TestRefused:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {
            **FAST,
            "webhook_allow_private": False,
            "webhook_signing_secret": "plain-shared-secret",
        }

    async def test_a_name_that_resolves_to_loopback_is_refused_at_delivery(
        self, embedded: httpx.AsyncClient, receiver: Receiver
    ) -> None:
        import socket

        host = socket.gethostname()
        assert address_refused(socket.gethostbyname(host)) is not None  # this machine's name
        task = await hooked_task(embedded, f"http://{host}:{receiver.port}/hook")
        [webhook] = await webhooks_when(embedded, task["id"], "failed")
        assert receiver.received == []
        assert webhook["attempts"] == 1
        assert webhook["lastError"].startswith("refused:")
        assert "loopback" in webhook["lastError"]


class TestFailures:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {**FAST, "webhook_max_attempts": 3, "webhook_signing_secret": "plain"}

    @pytest.mark.parametrize("receiver", [{"redirect": True}], indirect=True)
    async def test_a_redirect_is_not_followed(
        self, embedded: httpx.AsyncClient, receiver: Receiver
    ) -> None:
        task = await hooked_task(embedded, receiver.url)
        [webhook] = await webhooks_when(embedded, task["id"], "failed")
        assert len(receiver.received) == 1
        assert (webhook["lastStatusCode"], webhook["lastError"]) == (
            302,
            "redirects are not followed",
        )

    @pytest.mark.parametrize("receiver", [{"fail_first": 100}], indirect=True)
    async def test_failed_after_the_last_attempt_with_its_error(
        self, embedded: httpx.AsyncClient, receiver: Receiver
    ) -> None:
        task = await hooked_task(embedded, receiver.url)
        [webhook] = await webhooks_when(embedded, task["id"], "failed")
        assert len(receiver.received) == 3
        assert webhook["attempts"] == 3
        assert [a["attempt"] for a in webhook["history"]] == [1, 2, 3]
        assert webhook["lastError"] == "HTTP 500: not now"

    async def test_a_receiver_that_is_not_there(self, embedded: httpx.AsyncClient) -> None:
        task = await hooked_task(embedded, f"http://127.0.0.1:{free_port()}/hook")
        [webhook] = await webhooks_when(embedded, task["id"], "failed")
        assert webhook["attempts"] == 3
        assert webhook["lastStatusCode"] is None
        assert "ConnectError" in webhook["lastError"]


class TestNoSecret:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return FAST

    async def test_without_any_secret_nothing_is_sent(
        self, embedded: httpx.AsyncClient, receiver: Receiver
    ) -> None:
        task = await hooked_task(embedded, receiver.url)
        [webhook] = await webhooks_when(embedded, task["id"], "failed")
        assert receiver.received == []
        assert "no signing secret" in webhook["lastError"]
