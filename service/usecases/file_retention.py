"""What cleanup-old-files removes: expired files, and the temporaries of dead writers."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from service.db.repositories.files import FileRepository
from service.db.unit_of_work import UnitOfWork
from service.storage.base import FileStore

#: A temporary untouched for this long has no live writer. A live local writer touches its
#: temporary file with every batch; an S3 multipart upload is dated by its start, and even the
#: largest file the service writes (5 GiB) is in S3 long before this.
STALE_TEMPORARIES = timedelta(hours=6)


async def purge_expired(
    uow: UnitOfWork, store: FileStore, *, now: datetime, limit: int = 500
) -> int:
    """Delete up to `limit` files past their expiry: the bytes, then the records (a record
    whose bytes are already gone is simply removed)."""
    rows = await FileRepository(uow.session).expired(now, limit)
    for row in rows:
        await asyncio.to_thread(store.delete, row.key)
    return await FileRepository(uow.session).delete_ids([r.id for r in rows])


async def sweep_temporaries(store: FileStore, *, now: datetime) -> int:
    """Remove what writers killed mid-write (SIGKILL during an export, a crash during an
    upload) left in the store: their temporary files and unfinished multipart uploads."""
    return await asyncio.to_thread(store.sweep, before=now - STALE_TEMPORARIES)
