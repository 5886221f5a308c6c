"""CSV: UTF-8 (with or without BOM), sniffed delimiter, formula-safe cells."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any, BinaryIO, cast

from service.bulk import blanks, cells, streams
from service.bulk.columns import Column
from service.bulk.errors import BadHeader, CorruptFile
from service.bulk.formats.base import RowReader, RowWriter, check_header
from service.bulk.limits import ReadLimits
from service.bulk.rows import RawRow, RowError, reported
from service.bulk.sniffing import sniff_delimiter

LINE_TERMINATOR = "\r\n"  #: RFC 4180
_UTF8_BOM = "\ufeff"
_RISKY = cells.RISKY
_has_value = itemgetter(1)  #: (name, cell) pairs whose cell is not empty
_RECORD_BYTES = blanks.RECORD_BYTES
_BLANK_BATCH = 64 * 1024  #: blank input counted before the budget hears of it


class CsvReader(RowReader[list[str]]):
    """Rows of a CSV file keyed by the header; cells are text, empty ones left out."""

    format = "csv"
    _recoverable = (csv.Error,)

    def __init__(
        self,
        body: BinaryIO,
        head: bytes,
        *,
        compressed: bool,
        limits: ReadLimits,
        delimiter: str | None = None,
    ) -> None:
        super().__init__(compressed=compressed, limits=limits)
        self.delimiter = delimiter or sniff_delimiter(_first_line(head))
        separator = self.delimiter.encode()
        blank_lines = blanks.BlankLines(body, self.blank_budget, blank=separator, quote=b'"')
        self._runs = blank_lines.runs
        self._guard = streams.LineGuard(
            cast(BinaryIO, blank_lines), max_line_bytes=limits.max_line_chars, delimiter=separator
        )
        self._text = io.TextIOWrapper(
            streams.buffered(self._guard), encoding="utf-8-sig", newline=""
        )
        self._csv = csv.reader(self._text, delimiter=self.delimiter)
        self._header = self._read_header()
        self._line = self._csv.line_num  #: the line the last record read ended on
        blank_lines.position = self._record_start

    @property
    def columns(self) -> tuple[str, ...]:
        return self._header

    def close(self) -> None:
        self._text.close()  # the chain ends in a wrapper that leaves the caller's stream open

    def _read_header(self) -> tuple[str, ...]:
        try:
            first = next(self._csv, None)
        except csv.Error as error:
            raise BadHeader(f"the header row cannot be parsed: {error}") from None
        if not first:
            raise BadHeader("the file is empty: the first line must name the columns")
        return check_header(tuple(name.strip() for name in first), self.limits)

    def _records(self) -> Iterator[list[str]]:
        return self._csv

    def _record_start(self) -> int | None:
        """The lines the parser has taken, if it stands between two records (`BlankLines`)."""
        line = self._csv.line_num
        return line if line == self._line else None

    def _parse(self, source: Iterator[list[str]]) -> Iterator[RawRow]:
        # The hot loop of an import: a plain row (right width, no quote-led cell, short
        # lines) skips `_row` and its checks; anything else goes through it.
        header, width, guard, reader = self._header, len(self._header), self._guard, self._csv
        max_cell, runs, add_blank = self.limits.max_cell_chars, self._runs, self.blank_budget.add
        blank = 0  # blank input not yet added to the budget (a call a record costs)
        row: dict[str, Any] | RowError | None
        while True:
            for number, record in enumerate(source, self.position + 1):
                self.position = number
                line = reader.line_num
                if (
                    len(record) == width
                    and line - self._line == 1
                    and not guard.quote_led
                    and guard.longest <= max_cell
                ):
                    self._line = line
                    # the width is checked just above: zip's own strict check would repeat it
                    row = dict(filter(_has_value, zip(header, record)))  # noqa: B905
                else:
                    row = self._row(number, record)
                if row:
                    yield number, row
                elif not runs or runs[0][0] > line:
                    blank += _RECORD_BYTES + sum(map(len, record)) + len(record)
                    if blank > _BLANK_BATCH:
                        add_blank(blank)
                        blank = 0
                else:  # maybe the line that stands for a run of blank lines
                    self._blank(line, sum(map(len, record)) + len(record))
                    if self._run:
                        self._end_run()
                        break  # numbering goes on after the run
            else:
                return

    def _rows_in(self, record: list[str]) -> int:
        self._line = line = self._csv.line_num
        if not record and self._runs and self._runs[0][0] == line:
            return self._runs.popleft()[1]
        return 1

    def _unparsable(self, error: Exception) -> str:
        # Past its field limit the csv module goes on mid-cell: every line after would be a
        # row of garbage. A cell that long is an unbalanced quote (cells end at 32,767).
        if "field limit" in str(error):
            raise CorruptFile(
                f"a quoted cell near row {self.position} runs on for more than "
                f"{csv.field_size_limit()} characters: is a closing quote missing?"
            ) from None
        return super()._unparsable(error)

    def _row(self, number: int, record: list[str]) -> dict[str, Any] | RowError | None:
        previous, self._line = self._line, self._csv.line_num
        if len(record) != len(self._header):
            return self._odd_width(number, record)
        if self._guard.quote_led:
            record = [cells.restore(value) if value[:1] == "'" else value for value in record]
        # A cell can only be long if its line was, or if its record spans lines.
        if self._line - previous > 1 or self._guard.longest > self.limits.max_cell_chars:
            error = self._long_cell(number, record)
            if error is not None:
                return error
        return dict(filter(_has_value, zip(self._header, record, strict=True))) or None

    def _odd_width(self, number: int, record: list[str]) -> RowError | None:
        if not any(map(str.strip, record)):
            return None
        width = len(self._header)
        message = f"row has {len(record)} values but the header has {width} columns"
        return RowError(number, None, None, message)

    def _long_cell(self, number: int, record: list[str]) -> RowError | None:
        limit = self.limits.max_cell_chars
        for name, value in zip(self._header, record, strict=True):
            if len(value) > limit:
                message = f"{name} is longer than {limit} characters"
                return RowError(number, name, reported(value), message)
        return None


class CsvWriter(RowWriter):
    """RFC 4180 CSV in UTF-8; text cells neutralised against formula injection."""

    format = "csv"

    def __init__(
        self, stream: BinaryIO, columns: Sequence[Column], *, compress: bool, bom: bool = False
    ) -> None:
        super().__init__(stream, columns, compress=compress)
        self._text = io.TextIOWrapper(self.target, encoding="utf-8", newline="")
        if bom:
            self._text.write(_UTF8_BOM)
        self._csv = csv.writer(self._text, lineterminator=LINE_TERMINATOR)
        self._renderers = [cells.text_renderer(column) for column in self.columns]
        self._names = [column.name for column in self.columns]
        self._pick = _picker(self._names)
        self._csv.writerow(self._names)

    def write_row(self, row: Mapping[str, Any]) -> None:
        self.write_rows((row,))

    def write_rows(self, rows: Iterable[Mapping[str, Any]]) -> int:
        # The hot loop of an export: text that needs no neutralising skips its renderer.
        renderers, writerow, pick, risky = self._renderers, self._csv.writerow, self._pick, _RISKY
        count = 0
        for row in rows:
            try:
                values = pick(row)
            except KeyError:
                values = [row.get(name) for name in self._names]
            writerow(
                [
                    value if value.__class__ is str and value[:1] not in risky else render(value)
                    for value, render in zip(values, renderers, strict=True)
                ]
            )
            count += 1
        self.rows_written += count
        return count

    def _finish(self) -> None:
        self._text.flush()
        self._text.detach()


def _picker(names: list[str]) -> Callable[[Mapping[str, Any]], Sequence[Any]]:
    """The row's values in column order, in one C call; KeyError if a column is missing."""
    if len(names) == 1:
        name = names[0]
        return lambda row: (row[name],)
    return itemgetter(*names)


def _first_line(head: bytes) -> str:
    return head.decode("utf-8", "ignore").lstrip(_UTF8_BOM).partition("\n")[0]
