"""Due recurring schedules make their tasks (one per fire time, across every replica)."""

from __future__ import annotations

from datetime import timedelta

from service.bootstrap import Resources
from service.clock import utcnow


async def run(resources: Resources) -> str:
    from service.usecases import firing  # schedules and croniter: with the first tick, not at start

    settings = resources.settings
    timing = firing.Timing(
        grace=timedelta(seconds=settings.schedule_grace_seconds), batch=settings.schedule_batch
    )
    report = await firing.fire_due(resources.unit, resources.schedule_makers, timing, now=utcnow())
    return str(report)
