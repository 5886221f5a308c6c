"""Which cell styles of a workbook show numbers as dates: all an import needs of its styles.

openpyxl builds an object per style (fonts, fills, borders …); read here in one streaming
pass that keeps only the style numbers whose number format is a date or a duration.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field

from openpyxl.styles.numbers import builtin_format_code, is_date_format, is_timedelta_format

from service.bulk.errors import CorruptFile
from service.bulk.limits import ReadLimits
from service.bulk.workbook import package, xmlparse

_NUMBER_FORMAT = xmlparse.main("numFmt")
_CELL_FORMATS = xmlparse.main("cellXfs")
_FORMAT = xmlparse.main("xf")
#: Excel allows 64,000 cell formats; a stylesheet with more was not written by it.
MAX_CELL_FORMATS = 65_536


@dataclass(frozen=True, slots=True)
class DateStyles:
    """Style numbers (as the `s` attribute of a cell spells them) of dates and durations."""

    dates: frozenset[str] = frozenset()
    durations: frozenset[str] = frozenset()


@dataclass
class _Reading:
    codes: dict[int, str] = field(default_factory=dict)  #: custom number formats by id
    formats: list[int] = field(default_factory=list)  #: numFmtId of each cell format
    in_cell_formats: bool = False


def read_styles(archive: zipfile.ZipFile, name: str | None, limits: ReadLimits) -> DateStyles:
    if name is None:
        return DateStyles()
    reading = _Reading()

    def start(tag: str, attrs: dict[str, str]) -> None:
        if tag == _FORMAT and reading.in_cell_formats:
            if len(reading.formats) >= MAX_CELL_FORMATS:
                raise CorruptFile(f"{name} has more than {MAX_CELL_FORMATS} cell formats")
            reading.formats.append(_number(attrs.get("numFmtId", "0"), name))
        elif tag == _NUMBER_FORMAT:
            reading.codes[_number(attrs.get("numFmtId", ""), name)] = attrs.get("formatCode", "")
        elif tag == _CELL_FORMATS:
            reading.in_cell_formats = True

    parser = xmlparse.create(name)
    parser.StartElementHandler = start
    parser.EndElementHandler = lambda tag: _leave(reading, tag)
    with xmlparse.translated(name):
        parser.Parse(package.read_small(archive, name, limits), True)
    return _date_styles(reading)


def _leave(reading: _Reading, tag: str) -> None:
    if tag == _CELL_FORMATS:
        reading.in_cell_formats = False


def _number(text: str, part: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise CorruptFile(f"{part} has a number format id that is not a number") from None


def _date_styles(reading: _Reading) -> DateStyles:
    dates: set[str] = set()
    durations: set[str] = set()
    judged: dict[int, tuple[bool, bool]] = {}
    for index, format_id in enumerate(reading.formats):
        if format_id not in judged:
            code = reading.codes.get(format_id) or builtin_format_code(format_id) or ""
            judged[format_id] = (is_date_format(code), is_timedelta_format(code))
        is_date, is_duration = judged[format_id]
        if is_date:
            dates.add(str(index))
        if is_duration:
            durations.add(str(index))
    return DateStyles(frozenset(dates), frozenset(durations))
