"""Byte plumbing for readers: peeking, gzip by magic bytes, the decompression bomb guard."""

from __future__ import annotations

import gzip
import io
import tempfile
import threading
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from service.bulk.errors import LimitExceeded

GZIP_MAGIC = b"\x1f\x8b"
HEAD_BYTES = 64 * 1024
CHUNK = 64 * 1024
#: An XLSX that must be copied to be seekable stays in memory up to this size, then spills to disk.
SPOOL_IN_MEMORY = 8 * 1024 * 1024


class Stopped(Exception):
    """A reader was stopped from outside (its import was cancelled) between two chunks."""


class Stop(threading.Event):
    """Set by the import's event loop to stop its reader thread at the next chunk it reads:
    how a cancel reaches a read that is still inside one batch (a long run of blank rows,
    skipping to a checkpoint, copying a workbook)."""

    def check(self) -> None:
        if self.is_set():
            raise Stopped("the read was stopped")


#: What one item of a parsed JSON value (a list slot or an object entry and the small
#: object in it) can cost in memory beyond its text: `[[],[],…]` is 3 bytes an item as text
#: and 64 as Python objects. Items are counted by their commas, which every separator is.
ITEM_BYTES = 64


def weight(data: bytes | str) -> int:
    """What text may cost once parsed: its length, and `ITEM_BYTES` a comma."""
    commas = data.count(b",") if isinstance(data, bytes) else data.count(",")
    return len(data) + ITEM_BYTES * commas


class Meter:
    """The `weight` of the upload (after gzip) a reader has gone through, and of the cells
    it has looked up elsewhere (XLSX shared strings): a bound on what an import's batch
    holds once its rows are parsed, JSON columns included."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


class Metered(io.RawIOBase):
    """A stream that adds the weight of what is read from it to a meter and stops when told
    to."""

    def __init__(self, source: BinaryIO, meter: Meter, stop: Stop | None) -> None:
        self._source = source
        self._meter = meter
        self._stop = stop

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._stop is not None:
            self._stop.check()
        data = self._source.read(len(buffer))
        buffer[: len(data)] = data
        self._meter.count += weight(data)
        return len(data)


class _Prefixed(io.RawIOBase):
    """Bytes already read from a stream, then the rest of the stream."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class Counted(io.RawIOBase):
    """A stream that counts the bytes read from it: how far an import is into its file.

    Wrap it in an `io.BufferedReader`; closing it leaves `source` open.
    """

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self.consumed = 0  #: bytes read so far

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._source.read(len(buffer))
        buffer[: len(data)] = data
        self.consumed += len(data)
        return len(data)


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _Bounded(io.RawIOBase):
    """A decompressed stream that fails once it has produced more than `limit` bytes."""

    def __init__(self, source: _Readable, limit: int) -> None:
        self._source = source
        self._left = limit
        self._limit = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._source.read(min(len(buffer), self._left + 1))
        self._left -= len(data)
        if self._left < 0:
            raise LimitExceeded(
                f"the file decompresses to more than {self._limit} bytes, the import limit"
            )
        buffer[: len(data)] = data
        return len(data)


class LineGuard(io.RawIOBase):
    """Text bytes on their way to a parser: fails on an overlong line, notes quote-led cells.

    Checking per 64 KiB chunk rather than per line keeps the parser's loop in C.
    """

    def __init__(self, source: BinaryIO, *, max_line_bytes: int, delimiter: bytes) -> None:
        self._source = source
        self._limit = max_line_bytes
        self._run = 0  #: bytes of the line not yet ended by a newline
        self._markers = (b"\n'", b"\r'", b"\"'", delimiter + b"'")
        self.longest = 0  #: longest line seen so far, in bytes
        self.quote_led = False  #: some cell may start with a quote (see cells.restore)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._source.read(len(buffer))
        if data:
            self._scan(data)
            buffer[: len(data)] = data
        return len(data)

    def _scan(self, data: bytes) -> None:
        *ended, rest = (data.replace(b"\r", b"\n") if b"\r" in data else data).split(b"\n")
        if ended:
            longest = max(self._run + len(ended[0]), *map(len, ended), len(rest))
            self._run = len(rest)
        else:
            longest = self._run = self._run + len(rest)
        self.longest = max(self.longest, longest)
        if self.longest > self._limit:
            raise LimitExceeded(f"a line is longer than {self._limit} bytes, the import limit")
        if not self.quote_led and b"'" in data:
            self.quote_led = data[:1] == b"'" or any(m in data for m in self._markers)


@dataclass(frozen=True)
class Opened:
    """An upload after gzip detection: its first bytes and a stream from its very start."""

    head: bytes
    body: BinaryIO
    compressed: bool
    original: BinaryIO | None  #: the caller's stream when it is seekable and not compressed
    start: int  #: where the upload starts in `original`
    packed: Counted | None = None  #: the gzip upload's bytes, counting those gzip has read


def buffered(raw: io.RawIOBase) -> BinaryIO:
    return io.BufferedReader(raw, buffer_size=CHUNK)


def peek(stream: BinaryIO, size: int) -> tuple[bytes, BinaryIO]:
    """Up to `size` first bytes, and a stream that still starts with them."""
    head = stream.read(size)
    return head, buffered(_Prefixed(head, stream))


def open_upload(
    stream: BinaryIO,
    *,
    max_decompressed_bytes: int,
    meter: Meter | None = None,
    stop: Stop | None = None,
) -> Opened:
    """Unwrap gzip (found by its magic bytes, whatever the name says) behind a size guard;
    the body counts what is read of it into `meter` and checks `stop` at every chunk."""
    start = _tell(stream)
    magic, body = peek(stream, len(GZIP_MAGIC))
    compressed = magic == GZIP_MAGIC
    packed = None
    if compressed:
        packed = Counted(body)
        unpacked = gzip.GzipFile(fileobj=packed, mode="rb")
        body = buffered(_Bounded(unpacked, max_decompressed_bytes))
    body = buffered(Metered(body, meter or Meter(), stop))
    head, body = peek(body, HEAD_BYTES)
    original = stream if not compressed and start is not None else None
    return Opened(head, body, compressed, original, start or 0, packed)


def seekable_copy(opened: Opened) -> BinaryIO:
    """A seekable stream of the upload (zip readers need one); `opened.body` is spent after it."""
    if opened.original is not None:
        opened.original.seek(opened.start)
        return opened.original
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
    while chunk := opened.body.read(CHUNK):
        spool.write(chunk)
    spool.seek(0)
    return spool  # type: ignore[return-value]


def _tell(stream: BinaryIO) -> int | None:
    try:
        return stream.tell() if stream.seekable() else None
    except (OSError, AttributeError):
        return None
