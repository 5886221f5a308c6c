"""Runs a job for one tick at most once across every replica (a unique job_runs row)."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from service.bootstrap import Resources
from service.clock import utcnow
from service.db.engine import session_scope
from service.usecases import maintenance
from worker.jobs import JOBS

logger = logging.getLogger(__name__)


async def run_tick(resources: Resources, job: str, slot: int) -> str | None:
    """Run `job` for tick `slot` unless another replica already took it; returns its summary."""
    runner = resources.settings.worker_id
    async with session_scope(resources.sessionmaker) as session:
        run_id = await maintenance.claim_tick(session, job, slot, runner=runner, now=utcnow())
    if run_id is None:
        return None
    outcome, detail = "failed", ""
    try:
        detail = await JOBS[job](resources)
        outcome = "completed"
    except Exception as error:
        detail = f"{type(error).__name__}: {error}"
        logger.exception("job failed", extra={"action": "job.failed", "job": job})
        raise
    finally:
        async with session_scope(resources.sessionmaker) as session:
            await maintenance.finish_tick(
                session, run_id, now=utcnow(), outcome=outcome, detail=detail
            )
    return detail


class JobTrigger:
    """Starts job runs in the background, never two of one job at once in this process.

    Both triggers use it: the in-process scheduler and Dapr's cron binding routes, which must
    answer daprd at once rather than after the job.
    """

    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        self._active: dict[str, asyncio.Task[None]] = {}
        self.last: dict[str, dict[str, Any]] = {}
        self.history: deque[dict[str, Any]] = deque(maxlen=200)

    def fire(self, job: str, slot: int) -> bool:
        """Start tick `slot` of `job`; False when its previous run is still going."""
        if job not in JOBS:
            raise KeyError(job)
        active = self._active.get(job)
        if active is not None and not active.done():
            return False
        self._active[job] = asyncio.create_task(self._run(job, slot), name=f"job-{job}")
        return True

    async def _run(self, job: str, slot: int) -> None:
        at = utcnow().isoformat()
        try:
            detail = await run_tick(self.resources, job, slot)
            outcome = "skipped" if detail is None else "ok"
            self._note(job, {"at": at, "slot": slot, "outcome": outcome, "detail": detail})
        except Exception as error:
            detail = str(error)[:300]
            self._note(job, {"at": at, "slot": slot, "outcome": "failed", "detail": detail})

    def _note(self, job: str, record: dict[str, Any]) -> None:
        self.last[job] = record
        self.history.append({"job": job, **record})

    async def stop(self) -> None:
        for task in self._active.values():
            task.cancel()
        await asyncio.gather(*self._active.values(), return_exceptions=True)
