"""JSON Lines: one object per line; a bad line is a row error, not a failed import."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, BinaryIO

from pydantic_core import from_json, to_json

from service.bulk import blanks, cells, streams
from service.bulk.columns import Column, Kind
from service.bulk.errors import CorruptFile
from service.bulk.formats.base import RowReader, RowWriter
from service.bulk.limits import ReadLimits
from service.bulk.rows import RowError, reported

_BATCH = 512  #: lines joined into one write: small writes are slow into gzip


class JsonlReader(RowReader["str | None"]):
    """Objects of a JSON Lines file; keys whose value is "" are left out like empty CSV cells."""

    format = "jsonl"

    def __init__(self, body: BinaryIO, *, compressed: bool, limits: ReadLimits) -> None:
        super().__init__(compressed=compressed, limits=limits)
        blank_lines = blanks.BlankLines(body, self.blank_budget, blank=blanks.SPACE)
        blank_lines.position = self._lines_read
        self._runs = blank_lines.runs
        self._text = io.TextIOWrapper(
            streams.buffered(blank_lines), encoding="utf-8-sig", newline=""
        )
        #: an object was read (or lines skipped): a later bad line is a row error, while a
        #: file whose first line is no object is not JSON Lines at all
        self._objects = False

    def close(self) -> None:
        self._text.close()  # the chain ends in a wrapper that leaves the caller's stream open

    def _records(self) -> Iterator[str | None]:
        readline = self._text.readline
        limit = self.limits.max_line_chars
        while line := readline(limit + 1):
            if len(line) <= limit or line.endswith("\n"):
                yield line
                continue
            while (rest := readline(limit + 1)) and not rest.endswith("\n"):
                pass
            yield None

    def _row(self, number: int, line: str | None) -> dict[str, Any] | RowError | None:
        if line is None:
            return RowError(
                number, None, None, f"line is longer than {self.limits.max_line_chars} characters"
            )
        try:
            value = from_json(line, allow_inf_nan=False)
        except ValueError as error:
            if line.isspace():
                self._blank(number - self._folded, len(line))
                return None
            self._first_is_object(line)
            return RowError(
                number, None, reported(line.strip()), f"line is not valid JSON: {error}"
            )
        if type(value) is not dict:
            self._first_is_object(line)
            return RowError(number, None, reported(line.strip()), "line must be a JSON object")
        self._objects = True
        if '""' in line:
            value = {key: item for key, item in value.items() if item != ""}
        return self._check_size(number, value, len(line))

    def _lines_read(self) -> int:
        """Lines the reader has taken from the stream (`BlankLines`): every line is a record."""
        return self.position - self._folded

    def _rows_in(self, line: str | None) -> int:
        runs = self._runs
        if line == "\r\n" and runs and runs[0][0] == self.position + 1 - self._folded:
            rows = runs.popleft()[1]
            self._folded += rows - 1
            return rows
        return 1

    def skip(self, count: int) -> int:
        skipped = super().skip(count)
        self._objects = self._objects or skipped > 0
        return skipped

    def _first_is_object(self, line: str) -> None:
        if not self._objects:
            start = reported(line.strip()[:40])
            raise CorruptFile(
                f"the file is not JSON Lines (one JSON object per line): it starts with {start!r}"
            )

    def _check_size(
        self, number: int, row: dict[str, Any], chars: int
    ) -> dict[str, Any] | RowError:
        limits = self.limits
        if len(row) > limits.max_columns:
            message = f"line has {len(row)} keys; the limit is {limits.max_columns}"
            return RowError(number, None, None, message)
        if chars > limits.max_cell_chars:
            for name, value in row.items():
                if isinstance(value, str) and len(value) > limits.max_cell_chars:
                    message = f"{name} is longer than {limits.max_cell_chars} characters"
                    return RowError(number, name, reported(value), message)
        return row


class JsonlWriter(RowWriter):
    """One compact JSON object per line, keys in column order; decimals as strings ("12.50")."""

    format = "jsonl"

    def __init__(self, stream: BinaryIO, columns: Sequence[Column], *, compress: bool) -> None:
        super().__init__(stream, columns, compress=compress)
        self._names = [column.name for column in self.columns]
        self._canonical = [
            (column.name, canonical)
            for column in self.columns
            if (canonical := _canonical(column)) is not None
        ]
        self._pending: list[bytes] = []
        self._order = tuple(self._names)
        self._fixed = tuple(name for name, _ in self._canonical)

    def write_rows(self, rows: Iterable[Mapping[str, Any]]) -> int:
        # The hot loop of an export. A row that is a dict with exactly the columns, in
        # column order, whose decimal and datetime values are already text (or null), is
        # what `write_row` would build from it, value for value: it is encoded as it is.
        order, fixed, pending = self._order, self._fixed, self._pending
        before = self.rows_written
        quick = 0
        for row in rows:
            if row.__class__ is dict and tuple(row) == order:
                for name in fixed:
                    value = row[name]
                    if value is not None and value.__class__ is not str:
                        break
                else:
                    pending.append(to_json(row))
                    quick += 1
                    if len(pending) >= _BATCH:
                        self._flush()
                    continue
            self.write_row(row)
        self.rows_written += quick
        return self.rows_written - before

    def write_row(self, row: Mapping[str, Any]) -> None:
        get = row.get
        line = {name: get(name) for name in self._names}
        for name, canonical in self._canonical:
            line[name] = canonical(line[name])
        self._pending.append(to_json(line))
        self.rows_written += 1
        if len(self._pending) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._pending.append(b"")
            self.target.write(b"\n".join(self._pending))
            self._pending.clear()

    def _finish(self) -> None:
        self._flush()


def _canonical(column: Column) -> Callable[[Any], Any] | None:
    """How a column's values are put in one form: the same record, the same bytes."""
    if column.kind is Kind.DECIMAL:
        fixed = cells.fixed_point(column.scale)
        return lambda value: (
            fixed(value)
            if isinstance(value, Decimal | float | int) and not isinstance(value, bool)
            else value
        )
    if column.kind is Kind.DATETIME:
        return lambda value: cells.iso(value) if isinstance(value, datetime | date) else value
    return None
