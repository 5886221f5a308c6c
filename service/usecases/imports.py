"""Import bookkeeping: apply a validated batch to the local store, record its row errors and
move the checkpoint, all in the caller's one transaction — so a resumed import never writes a
row twice and never loses a row error."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from uuid import UUID

from service.bulk.rows import Candidate, RowError, reported
from service.db.repositories.store import ImportLedger
from service.db.unit_of_work import UnitOfWork

Mode = Literal["insert", "upsert"]


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


@dataclass
class Outcome:
    """What happened to one batch's candidates."""

    created: int = 0
    updated: int = 0
    skipped: int = 0
    errors: list[RowError] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Options:
    mode: Mode = "insert"
    skip_duplicates: bool = False
    dry_run: bool = False


def dedupe_batch(
    candidates: Sequence[Candidate], options: Options
) -> tuple[list[Candidate], Outcome]:
    """Within one batch a key counts once: later copies are skipped, errors, or (upsert) win."""
    first = {candidate.key: candidate for candidate in candidates}
    outcome = Outcome()
    if len(first) == len(candidates):  # no key twice: the common case, in one pass
        return list(candidates), outcome
    first.clear()
    for candidate in candidates:
        earlier = first.get(candidate.key)
        if earlier is None:
            first[candidate.key] = candidate
        elif options.mode == "upsert" and not options.skip_duplicates:
            first[candidate.key] = candidate
            outcome.updated += 1
        elif options.skip_duplicates:
            outcome.skipped += 1
        else:
            outcome.errors.append(duplicate(candidate, f"row {earlier.row_number}"))
    return list(first.values()), outcome


def duplicate(candidate: Candidate, where: str) -> RowError:
    """The report line of a key seen before (`where`)."""
    message = f"duplicate key {candidate.key!r}: already in {where}"
    return RowError(candidate.row_number, "key", candidate.key, message)


def first_rows(errors: Sequence[RowError], rows: int) -> list[RowError]:
    """Every problem of the first `rows` rejected rows (by row number): what an import with
    little room left under maxErrors still lists in its report."""
    numbers = {error.row for error in errors}
    if len(numbers) <= rows:
        return list(errors)
    kept = set(sorted(numbers)[: max(rows, 0)])
    return [error for error in errors if error.row in kept]


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
