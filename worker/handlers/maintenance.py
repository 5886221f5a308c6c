"""Maintenance as on-demand tasks: taskType "maintenance", entityType the job name."""

from __future__ import annotations

from service.domain.errors import PermanentFailure
from worker.context import HandlerContext
from worker.jobs import JOBS
from worker.registry import HandlerRegistry


async def run_job(ctx: HandlerContext) -> None:
    """Runs one maintenance job now, outside its cron schedule."""
    name = ctx.task.entity_type or ""
    if name not in JOBS:
        raise PermanentFailure(f"entityType must name a maintenance job: {', '.join(sorted(JOBS))}")
    detail = await ctx.run_job(name)
    ctx.result = {"detail": detail}
    await ctx.log("info", detail)


def register(registry: HandlerRegistry) -> None:
    registry.add("maintenance", None, run_job)
