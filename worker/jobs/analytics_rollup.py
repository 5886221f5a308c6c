"""Brings the analytics rollup up to date with the tasks changed since its watermark."""

from __future__ import annotations

from service.bootstrap import Resources
from service.clock import utcnow


async def run(resources: Resources) -> str:
    from service.usecases import analytics  # with the first rollup (every minute), not at start

    async with resources.unit() as uow:
        return await analytics.roll_up(uow, now=utcnow())
