"""The built-in local store: the batch is written in the checkpoint's own transaction."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from service.bulk.rows import Candidate
from service.clock import utcnow
from service.usecases import imports
from service.usecases.imports import Options, Outcome


class LocalSink:
    kind = "local"

    async def write(
        self,
        session: AsyncSession,
        entity: str,
        task_id: UUID,
        batch_number: int,
        batch: Sequence[Candidate],
        options: Options,
    ) -> Outcome:
        return await imports.apply_to_store(session, entity, task_id, batch, options, now=utcnow())

    async def close(self) -> None:
        return None
