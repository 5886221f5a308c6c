"""A small Server-Sent Events reader over httpx's streaming API, for the tests."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Event:
    id: str | None
    event: str
    data: Any


async def frames(response: httpx.Response) -> AsyncIterator[Event | str]:
    """Events, and comment lines (keep-alives) as plain strings, as they arrive."""
    fields: dict[str, str] = {}
    data: list[str] = []
    async for line in response.aiter_lines():
        if line == "":
            if data or fields:
                payload = "\n".join(data)
                yield Event(fields.get("id"), fields.get("event", "message"), json.loads(payload))
            fields, data = {}, []
        elif line.startswith(":"):
            yield line
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            else:
                fields[name] = value


async def collect(response: httpx.Response, until: Callable[[list[Event]], bool]) -> list[Event]:
    """Events until `until` holds for those read so far."""
    events: list[Event] = []
    async for frame in frames(response):
        if isinstance(frame, Event):
            events.append(frame)
            if until(events):
                return events
    raise AssertionError(f"the stream ended first: {events}")


def names(events: list[Event]) -> list[str]:
    return [e.event for e in events]
