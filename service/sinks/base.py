"""The ports to where an import's rows go (`Sink`) and an export's records come from (`Source`).

They speak the bulk values only (`bulk.rows`, `bulk.batches`, `bulk.params`): the use cases
sit above them, and the adapters (`local`, `dapr`) are chosen by the worker's wiring
(`worker/wiring.py`), which hands handlers a `Connector` that opens the one a task's params name.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from service.bulk.batches import Options, Outcome
from service.bulk.params import Export, SinkParams
from service.bulk.rows import Candidate
from service.domain.errors import OperationsError

#: One page of records; iterated once, by the writer (in its thread).
Page = Iterable[dict[str, Any]]


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


@dataclass(frozen=True, slots=True)
class Selection:
    """The records an export reads: one entity's, in key order, `batch_size` a page; those
    whose fields equal `equals` (values as the records' JSON holds them: a decimal as its text
    with the column's places, e.g. "12.50") and, in the local store, whose key starts with
    `key_prefix`."""

    entity: str
    equals: Mapping[str, str | int | bool]
    batch_size: int
    key_prefix: str | None = None

    @classmethod
    def of(cls, entity: str, export: Export) -> Selection:
        """What an export's checked params select."""
        equals = {f.column.name: f.value for f in export.filters}
        return cls(entity, equals, export.params.batch_size, export.params.key_prefix)


class Source(Protocol):
    kind: str

    async def count(self, selection: Selection) -> int | None:
        """How many records are selected (asked before the first page); None when the source
        does not say."""

    def pages(self, selection: Selection) -> AsyncIterator[Page]:
        """The selected records in key order, a page at a time."""

    async def close(self) -> None: ...


class Connector(Protocol):
    """Opens the sink an import's params name, or the source an export's do (`sink`:
    "local" or "service"); whoever opens one closes it."""

    def sink(self, params: SinkParams) -> Sink: ...

    def source(self, params: SinkParams) -> Source: ...
