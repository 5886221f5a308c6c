"""Maintenance as on-demand tasks: taskType "maintenance", entityType the job name."""

from __future__ import annotations

from service.domain.errors import PermanentFailure
from worker.context import HandlerContext
from worker.jobs import JOBS
from worker.registry import HandlerRegistry


async def run_job(ctx: HandlerContext) -> None:
    """Runs one maintenance job now, outside its cron schedule."""
    job = JOBS.get(ctx.task.entity_type or "")
    if job is None:
        raise PermanentFailure(f"entityType must name a maintenance job: {', '.join(sorted(JOBS))}")
    detail = await job(ctx.resources)
    ctx.result = {"detail": detail}
    await ctx.log("info", detail)


def register(registry: HandlerRegistry) -> None:
    registry.add("maintenance", None, run_job)
