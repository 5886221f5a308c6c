"""The sink port: write one validated, deduplicated batch of an import."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from service.bulk.rows import Candidate
from service.domain.errors import OperationsError
from service.usecases.imports import Options, Outcome


class SinkUnavailable(OperationsError):
    """The sink could not take the batch now; the import retries from its last checkpoint."""


class Sink(Protocol):
    kind: str

    async def write(
        self,
        session: AsyncSession,
        entity: str,
        task_id: UUID,
        batch_number: int,
        batch: Sequence[Candidate],
        options: Options,
    ) -> Outcome:
        """Write (in a dry run: judge) a batch; `session` holds the checkpoint transaction."""

    async def close(self) -> None: ...
