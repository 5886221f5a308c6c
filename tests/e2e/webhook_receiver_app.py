"""A webhook receiver behind its own Dapr sidecar: records what it is sent; the first
HOOK_FAIL_FIRST deliveries are answered 500."""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI, Request, Response

app = FastAPI()
received: list[dict[str, Any]] = []
FAIL_FIRST = int(os.environ.get("HOOK_FAIL_FIRST", "0"))


@app.post("/hook")
async def hook(request: Request) -> Response:
    body = await request.body()
    received.append({"headers": dict(request.headers), "body": body.decode()})
    if len(received) <= FAIL_FIRST:
        return Response("not yet", status_code=500)
    return Response("thanks")


@app.get("/state")
async def state() -> dict[str, Any]:
    return {"received": received}


@app.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}
