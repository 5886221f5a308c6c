"""Due scheduled tasks become pending (their created event rings the workers)."""

from __future__ import annotations

from service.bootstrap import Resources
from service.clock import utcnow
from service.usecases import execution


async def run(resources: Resources) -> str:
    async with resources.unit() as uow:
        due = await execution.promote_due(uow, now=utcnow())
    if due:
        resources.relay.kick()
    return f"{len(due)} scheduled tasks became pending"
