"""Dapr cron input bindings: POST /jobs/<job> starts that job's tick and answers 200 at once."""

from __future__ import annotations

import time
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request

from worker.jobs import JOBS
from worker.subscriptions import _worker


async def cron_tick(job: str, request: Request) -> dict[str, Any]:
    """Every replica's sidecar fires every tick; the job_runs row lets one of them run it.

    The slot is the tick's time rounded to the job's interval, so replicas firing the same
    aligned cron tick (a few ms apart) agree on it.
    """
    if job not in JOBS:
        raise HTTPException(404, f"no such job {job!r}")
    worker = _worker(request)
    interval = worker.resources.settings.job_slot_seconds.get(job, 1)
    slot = round(time.time() / interval)
    started = worker.jobs.fire(job, slot)
    return {"job": job, "slot": slot, "started": started}
