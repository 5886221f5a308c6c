"""Tasks whose lease expired (their worker died) are retried with backoff, or failed."""

from __future__ import annotations

from service.bootstrap import Resources
from service.clock import utcnow
from service.usecases import execution


async def run(resources: Resources) -> str:
    async with resources.unit() as uow:
        moved = await execution.expire_leases(
            uow, now=utcnow(), policy=resources.retry_policy, rng=resources.rng
        )
    if moved:
        resources.relay.kick()
    return f"{len(moved)} expired leases handed back"
