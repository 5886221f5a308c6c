"""A workbook's shared-string table, held in about the size of its XML.

openpyxl keeps the table as a list of str: ~50 bytes of object per string besides its
text, 428 MB for a 64 MB table of short strings (bench/README.md, hostile inputs). Here the
strings are UTF-8 in one buffer with an array of offsets, and decoded when a cell asks.
"""

from __future__ import annotations

import zipfile
from array import array
from typing import Any, NamedTuple

from service.bulk.errors import CorruptFile, LimitExceeded
from service.bulk.limits import ReadLimits
from service.bulk.rows import MAX_REPORTED_VALUE
from service.bulk.streams import Stop
from service.bulk.workbook import xmlparse

_ITEM = xmlparse.main("si")
_TEXT = xmlparse.main("t")
_PHONETIC = xmlparse.main("rPh")  #: a reading aid (furigana), not part of the text
#: The start of a text over the cell limit that is kept, enough for the error report.
KEEP = MAX_REPORTED_VALUE + 1


class TooLong(NamedTuple):
    """A cell text over the limit; only its start is kept."""

    start: str


class StringTable:
    """Shared strings by index; one over the cell limit comes back as `TooLong`."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._offsets = array("I", [0])  #: 4 bytes a string: the table is at most 64 MiB
        self._long: dict[int, TooLong] = {}
        self._view = memoryview(b"")

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def get(self, index: int) -> str | TooLong:
        if not 0 <= index < len(self._offsets) - 1:
            raise CorruptFile(f"a cell refers to shared string {index}; there are {len(self)}")
        if self._long and index in self._long:
            return self._long[index]
        return str(self._view[self._offsets[index] : self._offsets[index + 1]], "utf-8")

    def length(self, index: int) -> int:
        """Bytes of a string's UTF-8, without decoding it (0: an empty string)."""
        if not 0 <= index < len(self._offsets) - 1:
            return 0
        if self._long and index in self._long:
            return len(self._long[index].start)
        return self._offsets[index + 1] - self._offsets[index]

    def add(self, text: str) -> None:
        # openpyxl drops Excel's escape of a literal "_x" the same way
        self._data += (text.replace("x005F_", "") if "x005F_" in text else text).encode()
        self._offsets.append(len(self._data))

    def add_long(self, start: str) -> None:
        self._long[len(self)] = TooLong(start)
        self._offsets.append(len(self._data))

    def freeze(self) -> None:
        self._view = memoryview(self._data)


class _Collector:
    """Expat handlers gathering each <si>'s text, keeping at most `limit` characters."""

    def __init__(self, table: StringTable, limit: int) -> None:
        self.table = table
        self.limit = limit
        self.parts: list[str] = []
        self.length = 0
        self.collecting = False
        self.phonetic = False

    def start(self, name: str, attrs: Any) -> None:
        if name == _TEXT:
            self.collecting = not self.phonetic
        elif name == _ITEM:
            self.parts.clear()
            self.length = 0
        elif name == _PHONETIC:
            self.phonetic = True

    def end(self, name: str) -> None:
        if name == _TEXT:
            self.collecting = False
        elif name == _ITEM:
            text = "".join(self.parts)
            if self.length > self.limit:
                self.table.add_long(text[:KEEP])
            else:
                self.table.add(text)
        elif name == _PHONETIC:
            self.phonetic = False

    def text(self, data: str) -> None:
        if not self.collecting:
            return
        self.length += len(data)
        if self.length <= self.limit:
            self.parts.append(data)
        elif sum(map(len, self.parts)) < KEEP:  # over the limit: keep only its start
            self.parts[:] = ["".join(self.parts) + data[:KEEP]]


def read_strings(
    archive: zipfile.ZipFile, name: str | None, limits: ReadLimits, stop: Stop | None
) -> StringTable:
    """The table, parsed a chunk at a time; its XML must be within the limit's size."""
    table = StringTable()
    if name is None:
        return table
    size = archive.getinfo(name).file_size
    if size > limits.max_shared_strings_bytes:
        raise LimitExceeded(
            f"the workbook's string table is {size} bytes; the limit is "
            f"{limits.max_shared_strings_bytes} (save big files as CSV instead)"
        )
    collector = _Collector(table, limits.max_cell_chars)
    parser = xmlparse.create(name)
    parser.StartElementHandler = collector.start
    parser.EndElementHandler = collector.end
    parser.CharacterDataHandler = collector.text
    with xmlparse.translated(name), archive.open(name) as source:
        for _ in xmlparse.feed(parser, source, name):
            if stop is not None:
                stop.check()
    table.freeze()
    return table
