"""Runs a job for one tick at most once across every replica (a unique job_runs row)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Any

from service.bootstrap import Resources
from service.clock import utcnow
from service.db import availability
from service.logging import FailureStreak
from service.telemetry import metrics, tracing
from service.usecases import maintenance
from worker.jobs import JOBS

logger = logging.getLogger(__name__)

#: Seconds before a tick that failed for want of the database is tried again (doubling).
RETRY_FIRST, RETRY_CAP = 0.5, 5.0


async def run_tick(resources: Resources, job: str, slot: int) -> str | None:
    """Run `job` for tick `slot` unless another replica already took it; returns its summary."""
    runner = resources.settings.worker_id
    async with resources.unit() as uow:
        run_id = await maintenance.claim_tick(uow, job, slot, runner=runner, now=utcnow())
    if run_id is None:
        return None
    started = time.perf_counter()
    try:
        with tracing.span(f"job {job}", attributes={"ops.job": job}):
            detail = await JOBS[job](resources)
    except Exception as error:
        metrics.JOB_RUNS.labels(job, "failed").inc()
        await _finish(resources, run_id, "failed", f"{type(error).__name__}: {error}")
        raise
    finally:
        metrics.JOB_SECONDS.labels(job).observe(time.perf_counter() - started)
    metrics.JOB_RUNS.labels(job, "ok").inc()
    await _finish(resources, run_id, "completed", detail)
    return detail


async def _finish(resources: Resources, run_id: int, outcome: str, detail: str) -> None:
    async with resources.unit() as uow:
        await maintenance.finish_tick(uow, run_id, now=utcnow(), outcome=outcome, detail=detail)


class JobTrigger:
    """Starts job runs in the background, never two of one job at once in this process.

    Both triggers use it: the in-process scheduler and Dapr's cron binding routes, which must
    answer daprd at once rather than after the job. No tick is dropped for good: one that
    fires while its job still runs is run right after it (the latest such tick only: jobs are
    sweeps), and one that failed because the database was away is tried again until it
    works or a later tick of the job takes its place.
    """

    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        self._active: dict[str, asyncio.Task[None]] = {}
        self._due: dict[str, int] = {}  # a tick that fired while its job was running
        self._fired: dict[str, asyncio.Event] = {}
        self.streaks: dict[str, FailureStreak] = {}  # per job, for the worker's health
        self.last: dict[str, dict[str, Any]] = {}
        self.history: deque[dict[str, Any]] = deque(maxlen=200)

    def fire(self, job: str, slot: int) -> bool:
        """Start tick `slot` of `job`; False when its previous run still goes (it runs next)."""
        if job not in JOBS:
            raise KeyError(job)
        active = self._active.get(job)
        if active is not None and not active.done():
            self._due[job] = slot
            self._fired.setdefault(job, asyncio.Event()).set()
            return False
        self._active[job] = asyncio.create_task(self._run(job, slot), name=f"job-{job}")
        return True

    async def _run(self, job: str, slot: int) -> None:
        while True:
            retry = await self._try(job, slot)
            if retry and job not in self._due:
                await self._wait_for_retry(job)
            later = self._due.pop(job, None)
            if later is not None:
                slot = later
            elif not retry:
                return

    async def _try(self, job: str, slot: int) -> bool:
        """Run one tick and note it; True when it failed for want of the database."""
        streak = self.streaks.setdefault(job, FailureStreak(logger, f"job {job}", "job"))
        at = utcnow().isoformat()
        try:
            detail = await run_tick(self.resources, job, slot)
        except Exception as error:
            streak.failed(error, job=job)
            detail = str(error)[:300]
            self._note(job, {"at": at, "slot": slot, "outcome": "failed", "detail": detail})
            return availability.is_unavailable(error)
        streak.succeeded()
        outcome = "skipped" if detail is None else "ok"
        self._note(job, {"at": at, "slot": slot, "outcome": outcome, "detail": detail})
        return False

    async def _wait_for_retry(self, job: str) -> None:
        """Wait before trying again, but no longer than until the job's next tick fires."""
        fired = self._fired.setdefault(job, asyncio.Event())
        fired.clear()
        delay = self.streaks[job].backoff(RETRY_FIRST, RETRY_CAP)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await fired.wait()

    def _note(self, job: str, record: dict[str, Any]) -> None:
        self.last[job] = record
        self.history.append({"job": job, **record})

    async def stop(self) -> None:
        for task in self._active.values():
            task.cancel()
        await asyncio.gather(*self._active.values(), return_exceptions=True)
