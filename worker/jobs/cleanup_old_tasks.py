"""Deletes finished tasks and published outbox rows older than the retention period."""

from __future__ import annotations

from service.bootstrap import Resources
from service.clock import utcnow
from service.usecases import maintenance


async def run(resources: Resources) -> str:
    removed = 0
    while True:  # batches keep each transaction short on a large history
        async with resources.unit() as uow:
            batch = await maintenance.cleanup_old_tasks(
                uow, now=utcnow(), retention_days=resources.settings.retention_days
            )
        removed += batch
        if batch == 0:
            return f"{removed} old tasks deleted"
