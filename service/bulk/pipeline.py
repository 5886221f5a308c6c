"""Reader rows through a schema: what an import handler loops over."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, cast

from pydantic import ValidationError

from service.bulk.rows import RawRow, RowError
from service.bulk.schemas.base import NO_ERRORS, M, Schema


class CheckedRow(NamedTuple, Generic[M]):
    """A row after validation: a record, or None and the row's errors."""

    row: int
    record: M | None
    errors: tuple[RowError, ...]


#: CheckedRow from a ready tuple, without NamedTuple's Python-level __new__ (this runs per row).
_checked = cast(
    Callable[[tuple[int, Any, tuple[RowError, ...]]], "CheckedRow[Any]"],
    functools.partial(tuple.__new__, CheckedRow),
)


def check_rows(rows: Iterable[RawRow], schema: Schema[M]) -> Iterator[CheckedRow[M]]:
    """Validate rows lazily; rows a reader could not parse come through with their error.

    The same as `schema.validate_row` per row, inlined: this loop runs for every row.
    """
    validate, explain = schema.validator, schema.explain
    checked = _checked
    for number, raw in rows:
        if isinstance(raw, RowError):
            yield checked((number, None, (raw,)))
            continue
        try:
            record = validate(raw)
        except ValidationError as error:
            yield checked((number, None, explain(error, raw, number)))
        else:
            yield checked((number, record, NO_ERRORS))


@dataclass(frozen=True, slots=True)
class CheckedBatch(Generic[M]):
    """Consecutive rows after validation: what a sink gets, and the checkpoint after it."""

    records: list[M]  #: valid records in file order
    record_rows: list[int]  #: the row number of each record, for sink-side errors
    errors: list[RowError]  #: every problem of the batch's bad rows, in row order
    rows: int  #: rows in the batch, valid or not (blank rows not counted)
    last_row: int  #: resume after this batch with open_reader(..., start_after=last_row)


def check_batches(
    rows: Iterable[RawRow], schema: Schema[M], *, size: int = 1000
) -> Iterator[CheckedBatch[M]]:
    """Validate rows lazily, `size` rows to a batch (the last one may be smaller)."""
    source = iter(rows)
    while (batch := _next_batch(source, schema, size)) is not None:
        yield batch


def _next_batch(source: Iterator[RawRow], schema: Schema[M], size: int) -> CheckedBatch[M] | None:
    validate, explain = schema.validator, schema.explain
    records: list[M] = []
    record_rows: list[int] = []
    errors: list[RowError] = []
    count = number = 0
    for number, raw in itertools.islice(source, size):
        count += 1
        if isinstance(raw, RowError):
            errors.append(raw)
            continue
        try:
            records.append(validate(raw))
            record_rows.append(number)
        except ValidationError as error:
            errors.extend(explain(error, raw, number))
    return CheckedBatch(records, record_rows, errors, count, number) if count else None
