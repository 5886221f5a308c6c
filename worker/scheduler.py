"""In-process cron for the embedded mode: fires the same job functions Dapr's cron bindings call."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from croniter import croniter

from service.bootstrap import Resources
from service.clock import utcnow
from worker.jobs import JOBS
from worker.jobs.ticks import run_tick

logger = logging.getLogger(__name__)


class Scheduler:
    """Sleeps until the next due job, runs it in the background, never overlaps a job with itself."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        schedules = resources.settings.cron
        unknown = set(schedules) - set(JOBS)
        if unknown:
            raise ValueError(f"no such maintenance job: {', '.join(sorted(unknown))}")
        now = utcnow()
        self._iters = {job: croniter(expr, now) for job, expr in schedules.items()}
        self._next: dict[str, datetime] = {
            job: it.get_next(datetime) for job, it in self._iters.items()
        }
        self._active: dict[str, asyncio.Task[None]] = {}
        self.last: dict[str, dict[str, Any]] = {}

    async def run(self) -> None:
        while True:
            job = min(self._next, key=self._next.__getitem__)
            due = self._next[job]
            await asyncio.sleep(max(0.0, (due - utcnow()).total_seconds()))
            self._next[job] = self._iters[job].get_next(datetime)
            if job in self._active and not self._active[job].done():
                continue  # the previous run is still going: skip this tick
            self._active[job] = asyncio.create_task(self._fire(job, due))

    async def _fire(self, job: str, due: datetime) -> None:
        try:
            detail = await run_tick(self.resources, job, int(due.timestamp()))
            self.last[job] = {
                "at": due.isoformat(),
                "outcome": "skipped" if detail is None else "ok",
                "detail": detail,
            }
        except Exception as error:
            self.last[job] = {
                "at": due.isoformat(),
                "outcome": "failed",
                "detail": str(error)[:300],
            }

    def health(self) -> dict[str, Any]:
        return {"next": {j: t.isoformat() for j, t in self._next.items()}, "last": self.last}
