"""What readers yield and what the error report holds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
