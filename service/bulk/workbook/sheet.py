"""A worksheet's rows, streamed from its XML with expat.

Why not openpyxl's read-only worksheet (what imports used before): its parser holds each
cell's whole text (a 200 MB inline string took 384 MB), and it pads every row to the width
the sheet's <dimension> claims and yields an empty row for every row number skipped, so a
15 MB sheet claiming 16,384 columns read at ~1,400 rows/s. Here a row is the cells it has,
a gap in the row numbers costs nothing, and a cell's text is kept up to the cell limit only.
Values are converted as openpyxl's `data_only` mode does (its own date helpers).
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Generator
from datetime import datetime
from typing import Any, cast

from openpyxl.utils.cell import column_index_from_string
from openpyxl.utils.datetime import CALENDAR_MAC_1904, WINDOWS_EPOCH, from_excel, from_ISO8601

from service.bulk.blanks import RECORD_BYTES, Budget
from service.bulk.errors import CorruptFile
from service.bulk.limits import ReadLimits
from service.bulk.streams import Meter, Stop, weight
from service.bulk.workbook import xmlparse
from service.bulk.workbook.strings import KEEP, StringTable, TooLong
from service.bulk.workbook.styles import DateStyles

_ROW = xmlparse.main("row")
_CELL = xmlparse.main("c")
_VALUE = xmlparse.main("v")
_TEXT = xmlparse.main("t")
_INLINE = xmlparse.main("is")
_PHONETIC = xmlparse.main("rPh")
_DIMENSION = xmlparse.main("dimension")
_SHEET_DATA = xmlparse.main("sheetData")
_DIGITS = "0123456789"
#: Excel's widest sheet (column XFD): a row with more cells was not written by Excel.
MAX_ROW_CELLS = 16_384

#: A row as the sheet holds it: its number, its non-empty cells as (column from 1, value)
#: within the header's width, and whether it has values beyond that width.
SheetRow = tuple[int, list[tuple[int, Any]], bool]


class SheetReader:
    """Rows of one worksheet in file order; `width` (the header's) is set after row 1."""

    def __init__(
        self,
        archive: zipfile.ZipFile,
        name: str,
        *,
        strings: StringTable,
        styles: DateStyles,
        date1904: bool,
        limits: ReadLimits,
        meter: Meter,
        budget: Budget,
        stop: Stop | None,
    ) -> None:
        self.name = name
        self.width = MAX_ROW_CELLS
        self.dimension_rows: int | None = None  #: the last row its <dimension> claims
        self._archive = archive
        self._strings = strings
        self._dates = styles.dates
        self._durations = styles.durations
        self._epoch = CALENDAR_MAC_1904 if date1904 else WINDOWS_EPOCH
        self._limit = limits.max_cell_chars
        self._meter = meter
        self._budget = budget  #: blank input: empty rows and cells, elements not read
        self._stop = stop
        member = archive.getinfo(name)
        #: compressed bytes of the sheet per byte of its XML
        self._packing = member.compress_size / max(member.file_size, 1)
        self._fed = 0  #: bytes of the sheet's XML parsed so far
        #: elements that held nothing (empty rows and cells, elements not read) since the
        #: last chunk: each a Python call or two, so each counts as blank input
        self._idle = 0
        self._columns: dict[str, int] = {}
        self._done: list[SheetRow] = []  #: rows completed by the chunk just parsed
        self._ended = False
        # the row and cell being parsed
        self._row = 0
        self._cells: list[tuple[int, Any]] = []
        self._beyond = False
        self._count = 0
        self._column = 0
        self._type = "n"
        self._style: str | None = None
        self._parts: list[str] = []
        self._length = 0
        self._collecting = False
        self._inline = False
        self._phonetic = False

    def rows(self) -> Generator[SheetRow, None, None]:
        parser = xmlparse.create(self.name)
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._text
        meter, stop, done = self._meter, self._stop, self._done
        with self._archive.open(self.name) as source:
            for chunk in xmlparse.feed(parser, source, self.name):
                meter.count += weight(chunk)
                self._fed += len(chunk)
                if self._idle:
                    self._budget.add(RECORD_BYTES * self._idle)
                    self._idle = 0
                if stop is not None:
                    stop.check()
                if done:
                    yield from done
                    done.clear()
                if self._ended:
                    return

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        if name == _CELL:
            ref = attrs.get("r")
            self._column = self._column + 1 if ref is None else self._column_of(ref)
            self._type = attrs.get("t", "n")
            self._style = attrs.get("s")
            self._parts = []
            self._length = 0
            self._count += 1
            if self._count > MAX_ROW_CELLS:
                raise CorruptFile(f"row {self._row} has more than {MAX_ROW_CELLS} cells")
        elif name == _VALUE:
            self._collecting = self._type != "inlineStr"
        elif name == _TEXT:
            self._collecting = self._inline and not self._phonetic
        elif name == _INLINE:
            self._inline = self._type == "inlineStr"
        elif name == _ROW:
            self._start_row(attrs.get("r"))
        elif name == _PHONETIC:
            self._phonetic = True
        elif name == _DIMENSION:
            self.dimension_rows = _last_row(attrs.get("ref", ""))
        else:
            self._idle += 1

    def _end(self, name: str) -> None:
        if name == _CELL:
            if self._parts:
                self._add_cell()
            else:
                self._idle += 1
        elif name in (_VALUE, _TEXT):
            self._collecting = False
        elif name == _ROW:
            if self._cells or self._beyond:
                self._done.append((self._row, self._cells, self._beyond))
            else:
                self._idle += 1  # an empty row is only a gap in the numbers
        elif name == _INLINE:
            self._inline = False
        elif name == _PHONETIC:
            self._phonetic = False
        elif name == _SHEET_DATA:
            self._ended = True

    def _text(self, data: str) -> None:
        if self._collecting:
            self._parts.append(data)
            self._length += len(data)
            if self._length > self._limit:
                self._shorten()

    def _shorten(self) -> None:
        """Past the cell limit: keep the start for the report and stop keeping the rest."""
        start = "".join(self._parts)[:KEEP]
        self._parts = [start]
        if len(start) >= KEEP:
            self._collecting = False

    def _start_row(self, ref: str | None) -> None:
        number = self._row + 1
        if ref is not None:
            try:
                number = int(ref)
            except ValueError:
                raise CorruptFile(f"{self.name} has a row numbered {ref[:20]!r}") from None
            if number <= self._row:
                raise CorruptFile(f"{self.name} has row {number} after row {self._row}")
        self._row = number
        self._cells = []
        self._beyond = False
        self._count = 0
        self._column = 0

    def _column_of(self, ref: str) -> int:
        letters = ref.rstrip(_DIGITS)
        column = self._columns.get(letters)
        if column is None:
            try:
                column = column_index_from_string(letters)
            except ValueError:
                column = 0
            if not 0 < column <= MAX_ROW_CELLS:
                raise CorruptFile(f"{self.name} has a cell at {ref[:20]!r}, outside any sheet")
            self._columns[letters] = column
        return column

    def _add_cell(self) -> None:
        if self._column > self.width:
            self._beyond = self._beyond or self._has_value()
            return
        if self._length > self._limit:
            value: Any = TooLong(self._parts[0])
        else:
            value = self._value("".join(self._parts) if len(self._parts) > 1 else self._parts[0])
        if value is not None and value != "":
            self._cells.append((self._column, value))
        else:
            self._idle += 1

    def packed(self) -> float:
        """About how many compressed bytes of the sheet have been read."""
        return self._fed * self._packing

    def _has_value(self) -> bool:
        if self._type == "s":
            return self._strings.length(_index(self._parts[0])) > 0
        return True

    def _value(self, text: str) -> Any:
        kind = self._type
        if kind == "n":
            number = _number(text)
            style = self._style
            return number if style is None or style not in self._dates else self._date(number)
        if kind == "s":
            value = self._strings.get(_index(text))
            if value.__class__ is str:
                self._meter.count += weight(value)  # text the sheet's bytes do not count
            return value
        if kind == "inlineStr" or kind == "str" or kind == "e":
            return text
        if kind == "b":
            return text.strip() not in ("0", "false")
        if kind == "d":
            return _iso(text)
        raise CorruptFile(f"a cell of {self.name} has the unknown type {kind[:20]!r}")

    def _date(self, number: float) -> Any:
        try:
            return from_excel(number, self._epoch, timedelta=self._style in self._durations)
        except (OverflowError, ValueError):
            return "#VALUE!"  # as openpyxl: a date style on a number no date can have


def _number(text: str) -> int | float:
    try:
        return float(text) if "." in text or "E" in text or "e" in text else int(text)
    except ValueError:
        raise CorruptFile(f"a number cell holds {text[:40]!r}, which is not a number") from None


def _index(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise CorruptFile(f"a shared-string cell holds {text[:40]!r}, not an index") from None


#: openpyxl's ISO 8601 reader (a date, time, datetime or duration), typed
_from_iso = cast(Callable[[str], Any], from_ISO8601)


def _iso(text: str) -> datetime | Any:
    try:
        return _from_iso(text)
    except ValueError:
        raise CorruptFile(f"a date cell holds {text[:40]!r}, not an ISO 8601 date") from None


def _last_row(ref: str) -> int | None:
    digits = ref.rpartition(":")[2].lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ$")
    return int(digits) if digits.isdigit() else None
