"""A webhook notification in the Dapr shape: the worker hands it to its sidecar (service
invocation of a non-Dapr endpoint), which calls the receiver's own sidecar, which calls the
receiver; signed, and retried after the receiver first answers 500."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.dapr.conftest import Stack, get_json
from tests.e2e.dapr.test_delivery import ALICE, TASKS, wait_status
from tests.fixtures.app import wait_until
from tests.fixtures.database import ROOT, daprlocal

SECRET = "whsec_" + base64.b64encode(b"e2e webhook signing secret").decode()
FAST = {
    "OPS_WEBHOOK_ALLOW_PRIVATE": "true",
    "OPS_WEBHOOK_RETRY_BASE_SECONDS": "0.2",
    "OPS_WEBHOOK_POLL_SECONDS": "0.2",
    "OPS_WEBHOOK_SIGNING_SECRET": SECRET,
}


@pytest.fixture
async def hooked_stack(
    daprd: str, database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Stack]:
    """The stack whose API takes loopback webhook URLs (the receiver runs on this machine)."""
    s = Stack(tmp_path, daprd, database_url)
    try:
        s.start(OPS_WEBHOOK_ALLOW_PRIVATE="true")
        yield s
    finally:
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            print(s.logs())  # noqa: T201 - shown by pytest only for a failing test
        if s.client is not None:
            await s.client.aclose()
        s.stop()


def start_receiver(stack: Stack, **env: str) -> Any:
    receiver = daprlocal.DaprApp(
        "e2e-hook",
        [
            str(ROOT / ".venv/bin/python"),
            "-m",
            "uvicorn",
            "tests.e2e.webhook_receiver_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            "--log-level",
            "warning",
        ],
        stack.workdir / "hook",
        stack.resources,
        stack.daprd,
        env,
    ).start()
    stack.subscribers.append(receiver)  # stopped with the stack
    return receiver


def verify(secret: str, headers: dict[str, str], body: str) -> bool:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.{body}".encode()
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(expected, s) for s in headers["webhook-signature"].split())


class TestWebhookThroughDapr:
    async def test_signed_delivered_through_both_sidecars_after_a_500(
        self, hooked_stack: Stack
    ) -> None:
        stack = hooked_stack
        receiver = start_receiver(stack, HOOK_FAIL_FIRST="1")
        worker = stack.add_worker(**FAST)
        assert stack.client is not None
        # the receiver's own sidecar, invoked by the worker's sidecar
        url = f"{receiver.dapr_url}/v1.0/invoke/e2e-hook/method/hook"
        settings = {"onCompletion": True, "channels": ["webhook"], "webhookUrl": url}
        body = {"taskType": "noop", "notificationSettings": settings}
        created = await stack.client.post(TASKS, json=body, headers=ALICE)
        assert created.status_code == 201, created.text
        task = await wait_status(stack, created.json()["id"], "completed", timeout=60)

        async def delivered() -> dict[str, Any] | None:
            answer = await stack.client.get(  # type: ignore[union-attr]
                f"{TASKS}/{task['id']}/notifications", headers=ALICE
            )
            [webhook] = answer.json()["webhooks"]
            return webhook if webhook["status"] == "delivered" else None

        webhook = await wait_until(delivered, timeout=60, interval=0.2)
        assert [a["statusCode"] for a in webhook["history"]] == [500, 200]

        received = (await get_json(receiver.url + "/state"))["received"]
        assert len(received) == 2
        for hit in received:
            assert hit["headers"]["webhook-id"] == webhook["id"]
            assert verify(SECRET, hit["headers"], hit["body"])
        payload = json.loads(received[-1]["body"])
        assert (payload["reason"], payload["task"]["id"]) == ("completed", task["id"])
        health = await get_json(
            worker.url + "/health/detailed", headers={"X-Service-Token": "e2e-service-token"}
        )
        assert health["checks"]["worker"]["webhooks"]["delivered"] == 1

    async def test_the_dapr_sender_says_where_it_posts(self) -> None:
        from service.config import Settings
        from worker.webhook_senders import DaprSender

        sender = DaprSender(Settings(dapr_http_endpoint="http://127.0.0.1:3500"))
        try:
            assert sender.invoke_url("https://hooks.example.test/a/b?x=1") == (
                "http://127.0.0.1:3500/v1.0/invoke/https://hooks.example.test/method/a/b?x=1"
            )
        finally:
            await sender.close()
        assert isinstance(sender.client, httpx.AsyncClient)
