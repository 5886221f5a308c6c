"""A small real consumer of our lifecycle events, behind its own daprd (another team's service).

Environment: SUB_PUBSUB, SUB_TOPICS (comma-separated, already prefixed), SUB_DEAD_LETTER_TOPIC,
SUB_RETRY_FIRST (answer RETRY to the first N deliveries of each event id),
SUB_ALWAYS_RETRY (comma-separated CloudEvent types always answered RETRY).
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from fastapi import FastAPI, Request

app = FastAPI()
received: list[dict[str, Any]] = []
attempts: Counter[str] = Counter()


def _list(name: str) -> list[str]:
    return [v for v in os.environ.get(name, "").split(",") if v]


@app.get("/dapr/subscribe")
async def subscribe() -> list[dict[str, Any]]:
    dead_letter = os.environ.get("SUB_DEAD_LETTER_TOPIC")
    return [
        {
            "pubsubname": os.environ.get("SUB_PUBSUB", "pubsub"),
            "topic": topic,
            "routes": {"default": "/receive"},
            **({"deadLetterTopic": dead_letter} if dead_letter else {}),
        }
        for topic in _list("SUB_TOPICS")
    ]


@app.post("/receive")
async def receive(request: Request) -> dict[str, str]:
    event = await request.json()
    event_id = str(event.get("id"))
    attempts[event_id] += 1
    if event.get("type") in _list("SUB_ALWAYS_RETRY"):
        return {"status": "RETRY"}
    if attempts[event_id] <= int(os.environ.get("SUB_RETRY_FIRST", "0")):
        return {"status": "RETRY"}
    received.append({**event, "deliveryAttempts": attempts[event_id]})
    return {"status": "SUCCESS"}


@app.get("/received")
async def list_received() -> dict[str, Any]:
    return {"events": received, "attempts": dict(attempts)}


@app.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}
