"""XLSX through openpyxl: the first sheet, header in row 1; streamed both ways.

Reading uses openpyxl's read-only mode, which streams the sheet but holds the workbook's
shared-string table in memory: `ReadLimits.max_shared_strings_bytes` bounds that. Writing
uses write-only mode, which spools rows to a temporary file until the workbook is saved.
"""

from __future__ import annotations

import enum
import io
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any, BinaryIO

import openpyxl
from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE, Cell, WriteOnlyCell
from openpyxl.utils.exceptions import InvalidFileException

from service.bulk import cells
from service.bulk.columns import Column, Kind
from service.bulk.errors import BadHeader, CorruptFile, LimitExceeded
from service.bulk.formats.base import RowReader, RowWriter, check_header
from service.bulk.limits import ReadLimits
from service.bulk.rows import RowError, reported

SHEET_TITLE = "data"
_SHARED_STRINGS = "sharedstrings.xml"  #: xl/sharedStrings.xml, as Excel writes it

Row = tuple[Any, ...]


class XlsxReader(RowReader[Row]):
    """Rows of the first worksheet; cells keep their types (numbers, booleans, datetimes)."""

    format = "xlsx"

    def __init__(self, file: BinaryIO, *, compressed: bool, limits: ReadLimits) -> None:
        super().__init__(compressed=compressed, limits=limits)
        _check_archive(file, limits)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # styles openpyxl does not know
                self._book = openpyxl.load_workbook(file, read_only=True, data_only=True)
        except (zipfile.BadZipFile, InvalidFileException, KeyError, ValueError) as error:
            raise CorruptFile(f"the file is not a valid XLSX workbook: {error}") from error
        sheet = self._book.worksheets[0]
        self._expected = sheet.max_row - 1 if sheet.max_row else None  # from its dimension
        self._rows: Iterator[Row] = sheet.iter_rows(values_only=True)
        self._header = _header(next(self._rows, ()), limits)

    @property
    def columns(self) -> tuple[str, ...]:
        return self._header

    @property
    def expected_rows(self) -> int | None:
        # from the sheet's <dimension>, which Excel writes and openpyxl's write-only mode
        # (our exports) does not
        return self._expected

    def close(self) -> None:
        self._book.close()

    def _records(self) -> Iterator[Row]:
        return self._rows

    def _row(self, number: int, record: Row) -> dict[str, Any] | RowError | None:
        width = len(self._header)
        if any(value is not None and value != "" for value in record[width:]):
            return RowError(number, None, None, "row has values beyond the last header column")
        row = {
            name: value
            for name, value in zip(self._header, record[:width], strict=False)
            if value is not None and value != ""
        }
        limit = self.limits.max_cell_chars
        for name, value in row.items():
            if isinstance(value, str) and len(value) > limit:
                message = f"{name} is longer than {limit} characters"
                return RowError(number, name, reported(value), message)
        return row or None


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


def _check_archive(file: BinaryIO, limits: ReadLimits) -> None:
    start = file.tell()
    try:
        with zipfile.ZipFile(file) as archive:
            members = archive.infolist()
    except zipfile.BadZipFile as error:
        raise CorruptFile(f"the file is not a valid XLSX workbook: {error}") from error
    unpacked = sum(member.file_size for member in members)
    if unpacked > limits.max_decompressed_bytes:
        limit = limits.max_decompressed_bytes
        raise LimitExceeded(f"the workbook unpacks to {unpacked} bytes; the limit is {limit}")
    strings = sum(m.file_size for m in members if m.filename.lower().endswith(_SHARED_STRINGS))
    if strings > limits.max_shared_strings_bytes:
        raise LimitExceeded(
            f"the workbook's string table is {strings} bytes; the limit is "
            f"{limits.max_shared_strings_bytes} (save big files as CSV instead)"
        )
    file.seek(start)


def _header(first: Row, limits: ReadLimits) -> tuple[str, ...]:
    names = ["" if value is None else str(value).strip() for value in first]
    while names and not names[-1]:
        names.pop()
    if not names:
        raise BadHeader("the first row of the first sheet is empty: it must name the columns")
    return check_header(tuple(names), limits)
