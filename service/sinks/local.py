"""The built-in local store: the batch is written in the checkpoint's own transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.bulk import batches
from service.bulk.batches import Options, Outcome
from service.bulk.rows import Candidate
from service.clock import utcnow
from service.db.engine import session_scope
from service.db.repositories.store import StoreRepository

#: Rows an import writes after which the store's planner statistics are refreshed at its end.
ANALYZE_AFTER_ROWS = 10_000


class LocalSink:
    """Writes batches into `store_records`; with a sessionmaker it refreshes the table's
    planner statistics after a large import (see `StoreRepository.refresh_statistics`)."""

    kind = "local"

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession] | None = None) -> None:
        self.sessionmaker = sessionmaker
        self.written = 0  #: rows created or updated through this sink

    async def write(
        self,
        session: AsyncSession,
        entity: str,
        task_id: UUID,
        batch_number: int,
        batch: Sequence[Candidate],
        options: Options,
    ) -> Outcome:
        outcome = await apply_to_store(session, entity, task_id, batch, options, now=utcnow())
        if not options.dry_run:
            self.written += outcome.created + outcome.updated
        return outcome

    async def close(self) -> None:
        if self.sessionmaker is not None and self.written >= ANALYZE_AFTER_ROWS:
            async with session_scope(self.sessionmaker) as session:
                await StoreRepository(session).refresh_statistics()


async def apply_to_store(
    session: AsyncSession,
    entity: str,
    task_id: UUID,
    batch: Sequence[Candidate],
    options: Options,
    *,
    now: datetime,
) -> Outcome:
    """Write a deduplicated batch to the local store (or, in a dry run, only count).

    Inserting is one statement that skips taken keys and returns the keys it wrote: a key it
    did not write was in the target already (or was written concurrently meanwhile), which
    the import reports the same way either way. Upserts and dry runs look the keys up first.
    """
    store = StoreRepository(session)
    outcome = Outcome()
    if options.mode == "upsert" and not options.skip_duplicates:
        existing = await store.existing_keys(entity, [c.key for c in batch])
        outcome.updated = sum(1 for c in batch if c.key in existing)
        outcome.created = len(batch) - outcome.updated
        if not options.dry_run:
            await store.upsert(entity, task_id, [(c.key, c.fields) for c in batch], now)
        return outcome
    if options.dry_run:
        existing = await store.existing_keys(entity, [c.key for c in batch])
        taken = [c for c in batch if c.key in existing]
        outcome.created = len(batch) - len(taken)
    else:
        written = await store.insert_new(entity, task_id, [(c.key, c.fields) for c in batch], now)
        outcome.created = len(written)
        taken = [c for c in batch if c.key not in written] if len(written) < len(batch) else []
    for candidate in taken:
        if options.skip_duplicates:
            outcome.skipped += 1
        else:
            outcome.errors.append(batches.duplicate(candidate, "the target"))
    return outcome
