"""Reader rows through a schema: what an import handler loops over."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Generic, NamedTuple

from service.bulk.rows import RawRow, RowError
from service.bulk.schemas.base import M, Schema


class CheckedRow(NamedTuple, Generic[M]):
    """A row after validation: a record, or None and the row's errors."""

    row: int
    record: M | None
    errors: tuple[RowError, ...]


def check_rows(rows: Iterable[RawRow], schema: Schema[M]) -> Iterator[CheckedRow[M]]:
    """Validate rows lazily; rows a reader could not parse come through with their error."""
    validate = schema.validate_row
    for number, raw in rows:
        if isinstance(raw, RowError):
            yield CheckedRow(number, None, (raw,))
        else:
            record, errors = validate(raw, number)
            yield CheckedRow(number, record, errors)
