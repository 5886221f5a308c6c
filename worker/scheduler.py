"""In-process cron for the embedded mode: fires the same job functions Dapr's cron bindings call."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from service.bootstrap import Resources
from service.clock import utcnow
from worker.jobs import JOBS
from worker.jobs.ticks import JobTrigger


class Scheduler:
    """Sleeps until the next due job and fires it; a tick's slot is its due time in seconds."""

    def __init__(self, resources: Resources, trigger: JobTrigger) -> None:
        self.trigger = trigger
        schedules = resources.settings.cron
        unknown = set(schedules) - set(JOBS)
        if unknown:
            raise ValueError(f"no such maintenance job: {', '.join(sorted(unknown))}")
        from croniter import croniter  # the in-process cron's only: Dapr cron needs none

        now = utcnow()
        self._iters = {job: croniter(expr, now) for job, expr in schedules.items()}
        self._next = {job: it.get_next(datetime) for job, it in self._iters.items()}

    async def run(self) -> None:
        while True:
            job = min(self._next, key=self._next.__getitem__)
            due = self._next[job]
            await asyncio.sleep(max(0.0, (due - utcnow()).total_seconds()))
            self._next[job] = self._iters[job].get_next(datetime)
            self.trigger.fire(job, int(due.timestamp()))

    def health(self) -> dict[str, Any]:
        return {"mode": "in-process", "next": {j: t.isoformat() for j, t in self._next.items()}}
