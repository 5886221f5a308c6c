"""Runs a job for one tick at most once across every replica (a unique job_runs row)."""

from __future__ import annotations

import logging

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
