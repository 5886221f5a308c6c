"""A stream ends after OPS_STREAM_MAX_SECONDS, whether or not anything changed, gives its place
back, and its client resumes where it left off (Last-Event-ID)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fixtures.app import user
from tests.integration.api.support import BASE
from tests.integration.streams.sse import Event, frames

ALICE = user("alice")


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"stream_max_seconds": 1.0, "stream_keepalive_seconds": 0.3, "stream_max_clients": 1}


async def _read_to_the_end(response: httpx.Response) -> tuple[list[Event], int]:
    events: list[Event] = []
    comments = 0
    async for frame in frames(response):
        if isinstance(frame, Event):
            events.append(frame)
        else:
            comments += 1
    return events, comments


@pytest.mark.parametrize("path", ["{id}/stream", "stream"])
async def test_a_stream_ends_when_its_time_is_up_and_resumes_by_id(
    api_server: str, path: str
) -> None:
    async with httpx.AsyncClient(base_url=api_server, timeout=10) as client:
        created = await client.post(BASE, json={"taskType": "sleep"}, headers=ALICE)
        assert created.status_code == 201, created.text
        url = f"{BASE}/{path.format(id=created.json()['id'])}"
        async with client.stream("GET", url, headers=ALICE) as response:
            assert response.status_code == 200
            events, comments = await _read_to_the_end(response)  # no worker: nothing changes
        assert [e.event for e in events] == ["snapshot"]
        assert comments >= 1  # it stayed open, kept alive, until its time was up
        last = events[0].id
        assert last is not None

        # its place is free again (the process serves one stream here), and the client
        # resumes after what it saw: no second snapshot
        async with client.stream("GET", url, headers={**ALICE, "Last-Event-ID": last}) as again:
            assert again.status_code == 200
            resumed, _ = await _read_to_the_end(again)
        assert resumed == []
