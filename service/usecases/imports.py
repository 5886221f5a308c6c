"""Import bookkeeping: record a batch's row errors and move the checkpoint, in the transaction
that wrote the batch (the sink's) — so a resumed import never writes a row twice and never
loses a row error."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from service.bulk.rows import RowError, reported
from service.db.repositories.store import ImportLedger
from service.db.unit_of_work import UnitOfWork


@dataclass
class Totals:
    """Counts of an import so far (what the checkpoint stores)."""

    last_row: int = 0
    batches: int = 0
    processed: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    failed: int = 0

    @property
    def succeeded(self) -> int:
        return self.created + self.updated

    def as_values(self) -> dict[str, int]:
        return {
            "last_row": self.last_row,
            "batches": self.batches,
            "processed": self.processed,
            "created": self.created,
            "updated": self.updated,
            "skipped": self.skipped,
            "failed": self.failed,
            "succeeded": self.succeeded,
        }


async def record_batch(
    uow: UnitOfWork,
    task_id: UUID,
    errors: Sequence[RowError],
    totals: Totals,
    *,
    now: datetime,
) -> None:
    """Row errors and the new checkpoint, in the same transaction as the batch's writes."""
    await ImportLedger(uow.session).add_errors(
        [
            {
                "task_id": task_id,
                "row_number": e.row,
                "column": e.column,
                "value": reported(e.value),
                "message": e.message[:2000],
            }
            for e in errors
        ]
    )
    await ImportLedger(uow.session).save_checkpoint(task_id, totals.as_values(), now)


async def load_totals(uow: UnitOfWork, task_id: UUID) -> Totals:
    """Where a resumed import starts: the last checkpoint, or the beginning."""
    row = await ImportLedger(uow.session).checkpoint(task_id)
    if row is None:
        return Totals()
    return Totals(
        last_row=row.last_row,
        batches=row.batches,
        processed=row.processed,
        created=row.created,
        updated=row.updated,
        skipped=row.skipped,
        failed=row.failed,
    )
