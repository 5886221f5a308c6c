"""Another team's service that owns an entity: takes import batches and serves export pages.

It implements the contracts documented in service/sinks/dapr.py (import batches, export pages),
keeping records in memory.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI, Request, Response

app = FastAPI()
records: dict[str, dict[str, dict[str, Any]]] = {}
batches: dict[str, int] = {}
#: import calls answered 503 before the owner takes any (OWNER_UNAVAILABLE_CALLS: a short outage)
unavailable = {"left": int(os.environ.get("OWNER_UNAVAILABLE_CALLS", "0")), "answered": 0}


@app.post("/import", response_model=None)
async def take_batch(request: Request) -> dict[str, Any] | Response:
    body = await request.json()
    if unavailable["left"] > 0:
        unavailable["left"] -= 1
        unavailable["answered"] += 1
        return Response(status_code=503)
    batch_id = request.headers.get("Idempotency-Key", body["batchId"])
    batches[batch_id] = batches.get(batch_id, 0) + 1
    store = records.setdefault(body["entity"], {})
    results = []
    for record in body["records"]:
        key = record["key"]
        if key in store and body["mode"] == "insert":
            status = "skipped" if body["skipDuplicates"] else "error"
            results.append({"key": key, "status": status, "message": "exists at the owner"})
            continue
        results.append({"key": key, "status": "updated" if key in store else "created"})
        if not body["dryRun"]:
            store[key] = record["data"]
    return {"results": results}


@app.post("/export")
async def give_page(request: Request) -> dict[str, Any]:
    body = await request.json()
    store = records.get(body["entity"], {})
    keys = sorted(k for k in store if body["after"] is None or k > body["after"])[: body["limit"]]
    return {"records": [store[k] for k in keys], "next": keys[-1] if keys else None}


@app.get("/state")
async def state() -> dict[str, Any]:
    return {"records": records, "batches": batches, "unavailable": unavailable["answered"]}


@app.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}
