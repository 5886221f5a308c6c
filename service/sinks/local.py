"""The built-in local store: the batch is written in the checkpoint's own transaction."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.bulk.rows import Candidate
from service.clock import utcnow
from service.db.engine import session_scope
from service.db.repositories.store import StoreRepository
from service.usecases import imports
from service.usecases.imports import Options, Outcome

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
        outcome = await imports.apply_to_store(
            session, entity, task_id, batch, options, now=utcnow()
        )
        if not options.dry_run:
            self.written += outcome.created + outcome.updated
        return outcome

    async def close(self) -> None:
        if self.sessionmaker is not None and self.written >= ANALYZE_AFTER_ROWS:
            async with session_scope(self.sessionmaker) as session:
                await StoreRepository(session).refresh_statistics()
