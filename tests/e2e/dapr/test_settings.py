"""Stored settings through real sidecars and Redis: a save on one API replica drops the cache of
the other (each with its own daprd) through `settings.changed`, and the event reaches another
team's subscriber as a CloudEvent (issue 12, "Settings")."""

from __future__ import annotations

from typing import Any

import httpx

from service.domain.settings import CHANGED
from tests.e2e.dapr.conftest import APP_TOKEN, Stack, get_json
from tests.fixtures.app import wait_until
from tests.fixtures.database import daprlocal

PAYMENT = "/api/v1/settings/payment"
PUBLIC = "/api/v1/public/settings/payment"
ADMIN = {"X-User-ID": "root", "X-User-Roles": "admin"}
#: far beyond the test: only the event can make the other replica read the new version
TTL = "3600"


def second_api(stack: Stack) -> Any:
    """Another replica of the API app, with its own sidecar and its own cache."""
    api = daprlocal.DaprApp(
        "operations-api",
        daprlocal.ops_command("api"),
        stack.workdir / "api-1",
        stack.resources,
        stack.daprd,
        stack.env(OPS_SETTINGS_CACHE_SECONDS=TTL),
        app_token=APP_TOKEN,
    )
    api.workdir.mkdir(parents=True, exist_ok=True)
    stack.workers.append(api)  # stopped (and its logs shown) with the stack
    return api.start()


async def version(url: str) -> int:
    body = await get_json(url + PUBLIC)
    return int(body["version"])


class TestReplicas:
    async def test_a_save_on_one_replica_is_read_on_the_other_before_the_ttl(
        self, stack: Stack
    ) -> None:
        assert stack.client is not None
        subscriber = stack.add_subscriber([stack.prefix + CHANGED])
        other = second_api(stack)
        assert await version(other.url) == 0  # cached there for an hour
        assert await version(other.url) == 0

        etag = (await stack.client.get(PAYMENT, headers=ADMIN)).headers["etag"]
        body = {"enabledMethods": ["card", "cash_on_delivery"], "paymentTimeoutMinutes": 15}
        saved = await stack.client.put(PAYMENT, json=body, headers={**ADMIN, "If-Match": etag})
        assert saved.status_code == 200, saved.text

        async def seen_there() -> bool:
            return await version(other.url) == 1

        await wait_until(seen_there, timeout=5, interval=0.05)
        async with httpx.AsyncClient(timeout=10) as client:
            again = await client.get(other.url + PAYMENT, headers=ADMIN)
        assert again.headers["etag"] == saved.headers["etag"]

        async def delivered() -> list[dict[str, Any]] | None:
            events = (await get_json(subscriber.url + "/received"))["events"]
            return events or None

        [event] = await wait_until(delivered, timeout=20)
        assert event["type"] == CHANGED
        assert event["subject"] == "payment"
        assert event["source"] == "common-operations"
        assert event["data"]["version"] == 1
        assert event["data"]["changedBy"] == "root"
        assert {"path": "paymentTimeoutMinutes", "old": 30, "new": 15} in event["data"]["changes"]
