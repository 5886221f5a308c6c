"""Brings the analytics rollup up to date with the tasks changed since its watermark."""

from __future__ import annotations

from service.bootstrap import Resources
from service.clock import utcnow
from service.usecases import analytics


async def run(resources: Resources) -> str:
    async with resources.unit() as uow:
        return await analytics.roll_up(uow, now=utcnow())
