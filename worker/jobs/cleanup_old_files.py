"""Deletes files past their expiry: the stored bytes first, then the records."""

from __future__ import annotations

from service.bootstrap import Resources
from service.clock import utcnow
from service.db.engine import session_scope
from service.usecases import files


async def run(resources: Resources) -> str:
    removed = 0
    while True:  # batches keep each transaction short on a large backlog
        async with session_scope(resources.sessionmaker) as session:
            batch = await files.purge_expired(session, resources.store, now=utcnow())
        removed += batch
        if batch == 0:
            return f"{removed} expired files deleted"
