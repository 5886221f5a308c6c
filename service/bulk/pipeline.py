"""Reader rows through a schema, a batch at a time: the loop every import runs."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any, NamedTuple

from pydantic import ValidationError

from service.bulk.formats.base import RowReader
from service.bulk.rows import Candidate, RawRow, RowError
from service.bulk.schemas.base import Schema
from service.bulk.streams import Meter


class CheckedBatch(NamedTuple):
    """Consecutive rows after validation: what a sink gets, and the checkpoint after it."""

    candidates: list[Candidate]  #: the valid rows in file order
    errors: list[RowError]  #: every problem of the batch's bad rows, in row order
    last_row: int  #: resume after this batch with open_reader(..., start_after=last_row)


#: A batch ends once its rows have taken this much of the file by `streams.weight` (after
#: gzip; for XLSX, shared strings included): its memory, and the time before a cancel is
#: seen, stay bounded however large its rows or JSON values are. Ordinary rows (~150 bytes
#: and 7 commas, a weight of ~600) fill 2,000-row batches long before it.
BATCH_BYTES = 4 * 1024**2
#: Problems reported of one rejected row; the others are summed up in one more line.
MAX_ROW_PROBLEMS = 10


class Batches:
    """Validated rows of a reader, `size` rows at a time (blank rows not counted).

    This is the import's hot loop, run per row in a worker thread: it calls the schema's
    validator directly and makes each `Candidate` with `tuple.__new__`, because a generator
    hop, an intermediate tuple or a dataclass `__init__` per row were a tenth of the import's
    CPU (bench/README.md, bulk round 2).
    """

    def __init__(
        self, rows: Iterable[RawRow], schema: Schema[Any], *, max_bytes: int = BATCH_BYTES
    ) -> None:
        self.schema = schema
        self.max_bytes = max_bytes
        self._rows: Iterator[RawRow] = iter(rows)
        #: how far the reader is (a reader's own meter; a plain iterable never ends a batch)
        self._meter = rows.meter if isinstance(rows, RowReader) else Meter()

    def next(self, size: int, *, max_rejected: int | None = None) -> CheckedBatch | None:
        """The next `size` rows; fewer if they reach `max_bytes` of the file or if
        `max_rejected` of them are rejected (the batch ends with that row). None at the end."""
        candidates: list[Candidate] = []
        errors: list[RowError] = []
        last = 0
        schema = self.schema
        validate, key = schema.validator, schema.key_texter
        new, candidate, add = tuple.__new__, Candidate, candidates.append
        meter = self._meter
        full = meter.count + self.max_bytes
        rejected_left = size if max_rejected is None else max_rejected
        for last, raw in islice(self._rows, size):
            if isinstance(raw, RowError):
                errors.append(raw)
            else:
                try:
                    record = validate(raw)
                except ValidationError as error:
                    errors.extend(self._explain(error, raw, last))
                else:
                    # record.__dict__ is schema.to_row(record) without its copy: the record is
                    # frozen and nothing changes a candidate's fields
                    add(new(candidate, (last, key(record), record.__dict__)))
                    if meter.count > full:
                        break
                    continue
            rejected_left -= 1
            if rejected_left <= 0 or meter.count > full:
                break
        return CheckedBatch(candidates, errors, last) if last else None

    def _explain(self, error: ValidationError, raw: dict[str, Any], row: int) -> list[RowError]:
        lines = list(self.schema.explain(error, raw, row))
        if len(lines) <= MAX_ROW_PROBLEMS:
            return lines
        more = len(lines) - MAX_ROW_PROBLEMS + 1
        summary = RowError(row, None, None, f"… and {more} more problems in this row")
        return [*lines[: MAX_ROW_PROBLEMS - 1], summary]

    def __iter__(self) -> Iterator[CheckedBatch]:
        """Batches of 1,000 rows to the end (for tools and tests; the import sizes its own)."""
        while (batch := self.next(1000)) is not None:
            yield batch
