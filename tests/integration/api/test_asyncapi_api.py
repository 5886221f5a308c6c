"""GET /asyncapi.json: served without identity, like /openapi.json, for this deployment."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from service.api import asyncapi
from service.domain.events import EventType


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"topic_prefix": "t1.", "pubsub_name": "events"}


async def test_the_document_is_served_without_identity(api: httpx.AsyncClient) -> None:
    response = await api.get("/asyncapi.json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body == asyncapi.document("t1.", "events")
    created = body["channels"][asyncapi.key(EventType.CREATED.value)]
    assert created["address"] == "t1.operations.task.created"
    assert "`events`" in body["servers"]["dapr"]["description"]
    assert "/asyncapi.json" not in (await api.get("/openapi.json")).json()["paths"]
