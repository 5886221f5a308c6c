"""XLSX: the first sheet, header in row 1, read with bounded memory; written with openpyxl.

Reading streams the sheet's XML (`service.bulk.workbook`): a cell's text is kept up to the
cell limit, the shared-string table in about its XML's size (bounded by
`ReadLimits.max_shared_strings_bytes`). Writing uses openpyxl's write-only mode, which
spools rows to a temporary file until the workbook is saved.
"""

from __future__ import annotations

import enum
import io
import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any, BinaryIO

import openpyxl
from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE, Cell, WriteOnlyCell

from service.bulk import cells
from service.bulk.columns import Column, Kind
from service.bulk.errors import BadHeader
from service.bulk.formats.base import RowReader, RowWriter, check_header
from service.bulk.limits import ReadLimits
from service.bulk.rows import RawRow, RowError, reported
from service.bulk.streams import Meter, Stop
from service.bulk.workbook import package, sheet as sheet_xml, strings, styles
from service.bulk.workbook.sheet import SheetRow
from service.bulk.workbook.strings import TooLong

SHEET_TITLE = "data"


class XlsxReader(RowReader[SheetRow]):
    """Rows of the first worksheet; cells keep their types (numbers, booleans, datetimes).

    Rows are numbered by the sheet (row 2 is data row 1), so a gap in the sheet (or an empty
    row, which the sheet's parser drops) is a gap in the numbers, and `skip` counts the rows
    of the gap without a record for each.
    """

    format = "xlsx"

    def __init__(
        self,
        file: BinaryIO,
        *,
        compressed: bool,
        limits: ReadLimits,
        meter: Meter | None = None,
        stop: Stop | None = None,
        upload_share: float = 1.0,
    ) -> None:
        """`upload_share`: bytes of the upload a byte of the workbook took (below 1 when
        the workbook was gzipped as well)."""
        super().__init__(compressed=compressed, limits=limits)
        self.meter = meter or self.meter
        self._archive = package.open_archive(file, limits)
        try:
            parts = package.find_parts(self._archive, limits)
            self._sheet = sheet_xml.SheetReader(
                self._archive,
                parts.sheet,
                strings=strings.read_strings(self._archive, parts.strings, limits, stop),
                styles=styles.read_styles(self._archive, parts.styles, limits),
                date1904=parts.date1904,
                limits=limits,
                meter=self.meter,
                budget=self.blank_budget,
                stop=stop,
            )
            packed = self._sheet.packed
            self.blank_budget.compressed = lambda: packed() * upload_share
            self._rows = self._sheet.rows()
            self._header = _header(next(self._rows, None), limits)
        except BaseException:
            self._archive.close()
            raise
        self._sheet.width = len(self._header)
        last = self._sheet.dimension_rows
        self._expected = last - 1 if last else None

    @property
    def columns(self) -> tuple[str, ...]:
        return self._header

    @property
    def expected_rows(self) -> int | None:
        # from the sheet's <dimension>, which Excel writes and openpyxl's write-only mode
        # (our exports) does not
        return self._expected

    def close(self) -> None:
        self._rows.close()
        self._archive.close()

    def _records(self) -> Iterator[SheetRow]:
        return self._rows

    def _parse(self, source: Iterator[SheetRow]) -> Iterator[RawRow]:
        to_row = self._row
        for record in source:
            number = self.position = record[0] - 1
            row = to_row(number, record)
            if row is not None:
                yield number, row

    def skip(self, count: int) -> int:
        """Pass over the rows up to `position + count`, gaps included."""
        target = self.position + count
        before = self.position
        source = self._iterator()
        with self._translated():
            for record in source:
                if record[0] - 1 > target:
                    self._source = itertools.chain((record,), source)
                    self.position = target
                    return count
                self.position = record[0] - 1
        return self.position - before

    def _row(self, number: int, record: SheetRow) -> dict[str, Any] | RowError | None:
        _, values, beyond = record
        header = self._header
        width = len(header)
        row: dict[str, Any] = {}
        too_long: RowError | None = None
        for column, value in values:
            if column > width:  # only rows read with the header: the sheet marks later ones
                beyond = True
                break
            name = header[column - 1]
            if value.__class__ is TooLong and too_long is None:
                message = f"{name} is longer than {self.limits.max_cell_chars} characters"
                too_long = RowError(number, name, reported(value.start), message)
            row[name] = value
        if beyond:
            return RowError(number, None, None, "row has values beyond the last header column")
        return too_long or row or None


class XlsxWriter(RowWriter):
    """One worksheet named "data": numbers and booleans as such, text always as text.

    A text cell is written with an explicit string type, so Excel never runs it as a formula
    and no quote prefix is needed. Datetimes are ISO text, since Excel cannot keep a time zone.
    """

    format = "xlsx"

    def __init__(self, stream: BinaryIO, columns: Sequence[Column], *, compress: bool) -> None:
        super().__init__(stream, columns, compress=compress)
        self._book = openpyxl.Workbook(write_only=True)
        self._sheet = self._book.create_sheet(SHEET_TITLE)
        self._cells = [(column.name, _cell_value(column.kind)) for column in self.columns]
        self._sheet.append([column.name for column in self.columns])

    def write_row(self, row: Mapping[str, Any]) -> None:
        get = row.get
        values = [convert(get(name)) for name, convert in self._cells]
        self._sheet.append([self._text_cell(v) if _needs_text_cell(v) else v for v in values])
        self.rows_written += 1

    def _text_cell(self, value: str) -> Cell:
        cell = WriteOnlyCell(self._sheet, value=ILLEGAL_CHARACTERS_RE.sub("\ufffd", value))
        cell.data_type = "s"
        return cell

    def _finish(self) -> None:
        self._book.save(_Unseekable(self.target))  # zip with data descriptors: no seeking back


def _needs_text_cell(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    return (
        value[:1] == "=" or value in ERROR_CODES or ILLEGAL_CHARACTERS_RE.search(value) is not None
    )


def _text(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    return str(value.value if isinstance(value, enum.Enum) else value)


def _number(value: Any) -> Any:
    return value


def _datetime(value: Any) -> Any:
    return cells.iso(value) if isinstance(value, datetime | date) else value


def _json(value: Any) -> Any:
    return value if value is None or isinstance(value, str) else cells.json_text(value)


_CONVERTERS: dict[Kind, Callable[[Any], Any]] = {
    Kind.TEXT: _text,
    Kind.INTEGER: _number,
    Kind.DECIMAL: _number,
    Kind.BOOLEAN: _number,
    Kind.DATETIME: _datetime,
    Kind.JSON: _json,
}


def _cell_value(kind: Kind) -> Callable[[Any], Any]:
    return _CONVERTERS[kind]


class _Unseekable(io.RawIOBase):
    """A write-only view that hides `seek`, so zipfile streams instead of patching headers."""

    def __init__(self, target: BinaryIO) -> None:
        self._target = target

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, data: Any) -> int:
        return self._target.write(data)

    def flush(self) -> None:
        self._target.flush()


def _header(first: SheetRow | None, limits: ReadLimits) -> tuple[str, ...]:
    values = first[1] if first is not None and first[0] == 1 else []
    names = [""] * max((column for column, _ in values), default=0)
    for column, value in values:
        if value.__class__ is TooLong:
            limit = limits.max_cell_chars
            raise BadHeader(f"header cell {column} is longer than {limit} characters")
        names[column - 1] = str(value).strip()
    while names and not names[-1]:
        names.pop()
    if not names:
        raise BadHeader("the first row of the first sheet is empty: it must name the columns")
    return check_header(tuple(names), limits)
