"""What readers yield and what the error report holds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, cast

from pydantic_core import to_jsonable_python

from service.bulk.columns import Column, Kind

#: Longest value copied into an error report; longer ones are cut and end with "…".
MAX_REPORTED_VALUE = 200


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem of one row: a line of the error report."""

    row: int  #: data row number: 1 is the first row after the header (JSONL: the line number)
    column: str | None  #: None when the problem is the row as a whole
    value: str | None  #: the offending input, cut to MAX_REPORTED_VALUE characters
    message: str  #: human sentence naming the column, e.g. "price must not be negative"

    def as_row(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "column": self.column,
            "value": self.value,
            "message": self.message,
        }


class Candidate(NamedTuple):
    """A row that passed validation: its row number, key and the record's values.

    A named tuple rather than a frozen dataclass: the import makes one per row, and
    `tuple.__new__(Candidate, (row, key, fields))` costs a fraction of a dataclass's
    Python-level `__init__` (see `service/bulk/pipeline.py`).
    """

    row_number: int
    key: str
    #: the validated values by field (Decimal, datetime, nested records …); not to be changed
    fields: dict[str, Any]

    @property
    def data(self) -> dict[str, Any]:
        """The record JSON-ready (decimals as strings, datetimes in ISO 8601), for a sink.

        Made on demand: the local store encodes `fields` straight to JSON text, a batch in
        one pydantic-core call, which costs a third of making this dict for every row.
        """
        return cast(dict[str, Any], to_jsonable_python(self.fields))


#: A reader's item: the row number and either the row's cells or why the row could not be parsed.
RawRow = tuple[int, "dict[str, Any] | RowError"]

#: Columns of the error report file (write it with `writers.open_writer`).
ERROR_COLUMNS = (
    Column("row", Kind.INTEGER),
    Column("column"),
    Column("value"),
    Column("message"),
)


def reported(value: Any) -> str | None:
    """The value as the error report shows it."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_REPORTED_VALUE:
        return text[: MAX_REPORTED_VALUE - 1] + "…"
    return text
