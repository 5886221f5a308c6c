"""OPS_LOG_FORMAT=json: one JSON object per line, an access line per request with its route
template, status, duration and task id, and the trace id of the request."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from service.logging import JsonFormatter
from tests.fixtures.app import user

BASE = "/api/v1/operations/tasks"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"log_format": "json", "log_level": "info"}


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure_logging replaces the root handlers: put the test run's back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = [line for line in text.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # every line is a JSON object


async def test_each_request_writes_one_json_access_line(api: httpx.AsyncClient) -> None:
    # the app's handler (pytest adds its own beside it), written to a buffer here
    (handler,) = [h for h in logging.getLogger().handlers if isinstance(h.formatter, JsonFormatter)]
    assert isinstance(handler, logging.StreamHandler)
    output = io.StringIO()
    handler.setStream(output)
    headers = {**user(), "traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"}
    created = await api.post(BASE, json={"taskType": "sleep"}, headers=headers)
    task_id = created.json()["id"]
    await api.get(f"{BASE}/{task_id}", headers=headers)
    await api.get(f"{BASE}/not-a-uuid", headers=user())
    lines = json_lines(output.getvalue())
    access = [line for line in lines if line.get("action") == "http.request"]
    assert [(a["method"], a["route"], a["status"]) for a in access] == [
        ("POST", BASE, 201),
        ("GET", f"{BASE}/{{task_id}}", 200),
        ("GET", f"{BASE}/{{task_id}}", 422),
    ]
    first, second, third = access
    assert first["logger"] == "service.access"
    assert first["level"] == "info"
    assert isinstance(first["duration_ms"], float)
    assert first["trace_id"] == TRACE
    assert second["task_id"] == task_id
    assert second["path"] == f"{BASE}/{task_id}"
    assert "trace_id" not in third or third["trace_id"] != TRACE
    assert {"time", "message"} <= set(first)
