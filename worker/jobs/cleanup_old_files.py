"""Deletes files past their expiry (the stored bytes first, then the records), and the
temporaries that writers killed mid-write left in the store."""

from __future__ import annotations

from service.bootstrap import Resources
from service.clock import utcnow
from service.usecases import file_retention


async def run(resources: Resources) -> str:
    removed = 0
    while True:  # batches keep each transaction short on a large backlog
        async with resources.unit() as uow:
            batch = await file_retention.purge_expired(uow, resources.store, now=utcnow())
        removed += batch
        if batch == 0:
            break
    swept = await file_retention.sweep_temporaries(resources.store, now=utcnow())
    return f"{removed} expired files deleted, {swept} stale temporaries removed"
