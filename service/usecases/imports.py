"""Import bookkeeping: the input file a run reads; a batch's row errors and the checkpoint,
recorded in the transaction that wrote the batch (the sink's) — so a resumed import never
writes a row twice and never loses a row error; the rejected rows its error report lists."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from service.bulk.rows import RowError, reported
from service.db.repositories.files import FileRepository
from service.db.repositories.store import ImportLedger
from service.db.unit_of_work import UnitOfWork
from service.domain.errors import PermanentFailure
from service.domain.tasks import TaskRecord
from service.usecases.files import FileStatus


@dataclass(frozen=True, slots=True)
class InputFile:
    """The uploaded file an import reads."""

    key: str
    file_name: str
    size: int | None


async def input_file(uow: UnitOfWork, task: TaskRecord) -> InputFile:
    """The task's input file, once its bytes are stored; PermanentFailure otherwise."""
    try:
        file_id = UUID(str(task.input_file_id))
    except ValueError:
        raise PermanentFailure("the task has no input file; create it with a fileName") from None
    row = await FileRepository(uow.session).get(file_id)
    if row is None or row.status != FileStatus.READY:
        raise PermanentFailure(f"input file {file_id} is not uploaded")
    return InputFile(row.key, row.file_name, row.size)


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


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """One recorded problem of a rejected row (a row's problems are recorded together)."""

    id: int
    row: int
    column: str | None
    value: str | None
    message: str


async def rejected_rows(
    uow: UnitOfWork, task_id: UUID, *, after_id: int, limit: int
) -> list[RejectedRow]:
    """The import's recorded row problems after `after_id`, in the order recorded."""
    page = await ImportLedger(uow.session).errors(task_id, after_id=after_id, limit=limit)
    return [RejectedRow(r.id, r.row_number, r.column, r.value, r.message) for r in page]
