"""Reader rows through a schema, a batch at a time: the loop every import runs."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any, NamedTuple

from pydantic import ValidationError

from service.bulk.rows import Candidate, RawRow, RowError
from service.bulk.schemas.base import Schema


class CheckedBatch(NamedTuple):
    """Consecutive rows after validation: what a sink gets, and the checkpoint after it."""

    candidates: list[Candidate]  #: the valid rows in file order
    errors: list[RowError]  #: every problem of the batch's bad rows, in row order
    last_row: int  #: resume after this batch with open_reader(..., start_after=last_row)


class Batches:
    """Validated rows of a reader, `size` rows at a time (blank rows not counted).

    This is the import's hot loop, run per row in a worker thread: it calls the schema's
    validator directly and makes each `Candidate` with `tuple.__new__`, because a generator
    hop, an intermediate tuple or a dataclass `__init__` per row were a tenth of the import's
    CPU (bench/README.md, bulk round 2).
    """

    def __init__(self, rows: Iterable[RawRow], schema: Schema[Any]) -> None:
        self.schema = schema
        self._rows: Iterator[RawRow] = iter(rows)

    def next(self, size: int) -> CheckedBatch | None:
        """The next `size` rows; None at the end of the file."""
        candidates: list[Candidate] = []
        errors: list[RowError] = []
        last = 0
        schema = self.schema
        validate, explain, key = schema.validator, schema.explain, schema.key_texter
        new, candidate, add = tuple.__new__, Candidate, candidates.append
        for last, raw in islice(self._rows, size):
            if isinstance(raw, RowError):
                errors.append(raw)
                continue
            try:
                record = validate(raw)
            except ValidationError as error:
                errors.extend(explain(error, raw, last))
                continue
            # record.__dict__ is schema.to_row(record) without its copy: the record is
            # frozen and nothing changes a candidate's fields
            add(new(candidate, (last, key(record), record.__dict__)))
        return CheckedBatch(candidates, errors, last) if last else None

    def __iter__(self) -> Iterator[CheckedBatch]:
        """Batches of 1,000 rows to the end (for tools and tests; the import sizes its own)."""
        while (batch := self.next(1000)) is not None:
            yield batch
