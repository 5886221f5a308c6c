"""The sink port: write one validated, deduplicated batch of an import.

It speaks the bulk values only (`bulk.rows`, `bulk.batches`): the use cases sit above it, and
the adapters (`local`, `dapr`) are chosen by the worker's wiring (`worker/handlers/sinks.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from service.bulk.batches import Options, Outcome
from service.bulk.rows import Candidate
from service.domain.errors import OperationsError


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
