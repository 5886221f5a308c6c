"""The built-in local store: an import's batch is written in the checkpoint's own transaction;
an export pages the records one keyset page per transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from service.bulk import batches
from service.bulk.batches import Options, Outcome
from service.bulk.rows import Candidate
from service.clock import utcnow
from service.db.repositories.store import StoreRepository
from service.db.unit_of_work import Units
from service.sinks.base import Page, Selection

#: Rows an import writes after which the store's planner statistics are refreshed at its end.
ANALYZE_AFTER_ROWS = 10_000


class LocalSink:
    """Writes batches into `store_records`; given units of work it refreshes the table's
    planner statistics after a large import (see `StoreRepository.refresh_statistics`)."""

    kind = "local"

    def __init__(self, units: Units | None = None) -> None:
        self.units = units
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
        if self.units is not None and self.written >= ANALYZE_AFTER_ROWS:
            async with self.units() as uow:
                await StoreRepository(uow.session).refresh_statistics()


class LocalSource:
    """Reads the records of `store_records`, one keyset page per transaction: no transaction
    stays open while a page is written to the file."""

    kind = "local"

    def __init__(self, units: Units) -> None:
        self.units = units

    async def count(self, selection: Selection) -> int:
        async with self.units() as uow:
            return await StoreRepository(uow.session).count(
                selection.entity, equals=selection.equals, key_prefix=selection.key_prefix
            )

    async def pages(self, selection: Selection) -> AsyncIterator[Page]:
        after: str | None = None
        while True:
            async with self.units() as uow:
                page = await StoreRepository(uow.session).page_json(
                    selection.entity,
                    after=after,
                    limit=selection.batch_size,
                    equals=selection.equals,
                    key_prefix=selection.key_prefix,
                )
            if page is None:
                return
            after = page.last_key
            yield page  # one JSON text, parsed where the file is written

    async def close(self) -> None:
        """Nothing to close: each page had its own transaction."""


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
