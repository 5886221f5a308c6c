"""What every format's reader and writer share: row numbering, skipping, gzip, closing."""

from __future__ import annotations

import contextlib
import gzip
import zipfile
import zlib
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, BinaryIO, ClassVar, Generic, Self, TypeVar

from service.bulk.blanks import RECORD_BYTES, Budget
from service.bulk.columns import Column
from service.bulk.errors import BadHeader, CorruptFile, LimitExceeded, NotUtf8
from service.bulk.limits import ReadLimits
from service.bulk.rows import RawRow, RowError
from service.bulk.sniffing import Format
from service.bulk.streams import Meter

R = TypeVar("R")

#: gzip level of exports: close to the best ratio at a fraction of level 9's time.
GZIP_LEVEL = 6
_CORRUPT = (EOFError, zlib.error, gzip.BadGzipFile, zipfile.BadZipFile)


class RowReader(ABC, Generic[R]):
    """An upload's rows, parsed lazily, numbered like the file.

    Row 1 is the first row after the header (JSON Lines: line 1). Blank rows are not
    yielded but keep their number, so numbers match the file and `skip` stays exact. A run
    of blank lines that `blanks.BlankLines` took out reaches the parser as one empty line
    and counts as the lines it stood for.
    """

    format: ClassVar[Format]
    #: Errors of one record after which the parser can go on with the next (csv.Error).
    _recoverable: ClassVar[tuple[type[Exception], ...]] = ()

    def __init__(self, *, compressed: bool, limits: ReadLimits) -> None:
        self.compressed = compressed
        self.limits = limits
        self.position = 0  #: number of the last row read or skipped
        #: what the reader has gone through (see `streams.Meter`); `open_reader` shares it
        #: with the stream under the reader
        self.meter = Meter()
        #: the blank input it went through, against the compressed upload (`open_reader` says
        #: how much of that was read)
        self.blank_budget = Budget(limits.max_blank_ratio, limits.blank_allowance)
        #: (output line, lines it stands for) of each run of blank lines taken out, in order
        self._runs: deque[tuple[int, int]] = deque()
        self._run = 0  #: lines the run's line just read stands for (0: it was no such line)
        self._folded = 0  #: lines of the file the runs read so far stood for beyond their own
        self._source: Iterator[R] | None = None

    @property
    def columns(self) -> tuple[str, ...] | None:
        """Header names in file order; None for JSON Lines, which has no header."""
        return None

    @property
    def expected_rows(self) -> int | None:
        """Data rows the file says it holds before it is read (an XLSX sheet's dimension), for
        progress where counting bytes says nothing; None when the file does not tell."""
        return None

    @abstractmethod
    def _records(self) -> Iterator[R]:
        """Raw records in file order, exactly one per row number."""

    @abstractmethod
    def _row(self, number: int, record: R) -> dict[str, Any] | RowError | None:
        """The cells of a record (empty cells left out), why it is bad, or None if blank."""

    def __iter__(self) -> Iterator[RawRow]:
        source = self._iterator()
        with self._translated():
            while True:
                try:
                    yield from self._parse(source)
                    return
                except self._recoverable as error:
                    self.position += 1
                    yield (
                        self.position,
                        RowError(self.position, None, None, self._unparsable(error)),
                    )

    def _parse(self, source: Iterator[R]) -> Iterator[RawRow]:
        """Rows from the records; a format may inline `_row` here for speed."""
        to_row = self._row
        while True:
            for number, record in enumerate(source, self.position + 1):
                self.position = number
                row = to_row(number, record)
                if row is not None:
                    yield number, row
                elif self._run:
                    self._end_run()
                    break  # numbering goes on after the run
            else:
                return

    def _blank(self, line: int, size: int) -> None:
        """Note that the record ending on output line `line` held nothing: the line that
        stands for a run of blank lines, or `size` characters the budget counts."""
        runs = self._runs
        while runs and runs[0][0] < line:
            runs.popleft()  # a run whose line the reader never saw as such: none, normally
        if runs and runs[0][0] == line:
            self._run = runs.popleft()[1]
        else:
            self.blank_budget.add(RECORD_BYTES + size)

    def _end_run(self) -> None:
        """Number the rows after the run's line as the file does."""
        more = self._run - 1
        self.position += more
        self._folded += more
        self._run = 0

    def _rows_in(self, record: R) -> int:
        """How many rows of the file a record stands for, when skipped (see `skip`)."""
        return 1

    def _unparsable(self, error: Exception) -> str:
        """The report message of a record the parser gave up on."""
        return f"row cannot be parsed: {error}"

    def skip(self, count: int) -> int:
        """Pass over the next `count` rows without parsing their cells; returns how many there were.

        Resuming after a checkpoint at row N is `skip(N)` on a fresh reader. A run of blank
        lines may take the reader past row N: the rows it passes are blank.
        """
        source = self._iterator()
        start = self.position
        target = start + count
        with self._translated():
            while self.position < target:
                try:
                    for record in source:
                        self.position += self._rows_in(record)
                        if self.position >= target:
                            break
                    else:
                        break
                except self._recoverable:
                    self.position += 1
        return min(self.position, target) - start

    def close(self) -> None:
        """Release what the reader holds; the caller's stream stays open."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _iterator(self) -> Iterator[R]:
        if self._source is None:
            self._source = self._records()
        return self._source

    @contextlib.contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except UnicodeDecodeError:
            raise NotUtf8(f"the file is not UTF-8 near row {self.position + 1}") from None
        except _CORRUPT as error:
            near = f"near row {self.position + 1}"
            raise CorruptFile(f"the file is damaged or truncated {near}: {error}") from error


class RowWriter(ABC):
    """Writes rows (mappings of column name to value) as one file, optionally gzip-compressed.

    `close` finishes the file (and the gzip trailer) but leaves the caller's stream open.
    """

    format: ClassVar[Format]

    def __init__(self, stream: BinaryIO, columns: Sequence[Column], *, compress: bool) -> None:
        self.columns = tuple(columns)
        self.rows_written = 0
        self._closed = False
        self._stream = stream
        self._gzip = (
            gzip.GzipFile(fileobj=stream, mode="wb", mtime=0, filename="", compresslevel=GZIP_LEVEL)
            if compress
            else None
        )
        self.target: BinaryIO = self._gzip or stream  # type: ignore[assignment]

    @abstractmethod
    def write_row(self, row: Mapping[str, Any]) -> None:
        """Write one row; missing columns are empty, unknown keys are ignored."""

    def write_rows(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Write rows in order; returns how many."""
        before = self.rows_written
        for row in rows:
            self.write_row(row)
        return self.rows_written - before

    @abstractmethod
    def _finish(self) -> None:
        """Write what the format needs at the end and flush it into `self.target`."""

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._finish()
        if self._gzip is not None:
            self._gzip.close()
        self._stream.flush()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def check_header(names: tuple[str, ...], limits: ReadLimits) -> tuple[str, ...]:
    """The header names, if every column has one, none repeats and there are not too many."""
    if len(names) > limits.max_columns:
        raise LimitExceeded(
            f"the header has {len(names)} columns; the limit is {limits.max_columns}"
        )
    for index, name in enumerate(names, 1):
        if not name:
            raise BadHeader(f"column {index} of the header has no name")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise BadHeader(f"the header names these columns more than once: {', '.join(duplicates)}")
    return names
