"""Input that holds no row: blank lines taken out in bulk, and a bound on all of it.

A reader's cost is per line and per element, whether or not they hold a row: 256 MiB of
newlines in a 261 KB gzip kept the CSV reader busy for five minutes. `BlankLines` takes
runs of blank lines out of the bytes before the parser sees them (C-speed bytes operations,
one Python step a run), and `Budget` fails a file once its blank input outgrows its
compressed size, whatever form it takes.
"""

from __future__ import annotations

import io
import re
from collections import deque
from collections.abc import Callable
from typing import BinaryIO

from service.bulk.errors import LimitExceeded

#: ASCII whitespace besides line breaks (`bytes.isspace`): what a blank JSON line may hold.
SPACE = b" \t\x0b\x0c"
#: What a line, row or element the parser handled one by one and found empty counts on top
#: of its text: its per-record work costs about what this much text does.
RECORD_BYTES = 16
CHUNK = 64 * 1024
#: A look at this much of each end of a chunk decides whether the chunk is searched for runs.
SAMPLE = 256
#: The empty line that stands for a run: a lone LF after a CR-ended line would join it as a CRLF.
MARK = b"\r\n"
#: A partial line held back longer than this goes on unexamined (a CSV's LineGuard fails
#: lines past its own limit further on; a JSON Lines line that long is a row error).
MAX_HELD = 1024 * 1024


class Budget:
    """Blank input a reader went through, against the compressed upload it came from.

    A file fails once that input is more than `ratio` times the compressed bytes read so
    far plus `allowance`, so that a small upload cannot keep a reader busy without rows.
    """

    def __init__(self, ratio: int, allowance: int) -> None:
        self.ratio = ratio
        self.allowance = allowance
        self.count = 0  #: bytes of blank input, and RECORD_BYTES per record handled alone
        #: compressed bytes read so far; None for an upload that is not compressed
        self.compressed: Callable[[], float] | None = None
        self._bound: float = allowance  #: the limit as of its last check; it only grows

    def add(self, size: int) -> None:
        self.count += size
        if self.count > self._bound:
            self._check()

    def _check(self) -> None:
        if self.compressed is None:
            self._bound = self.count + self.allowance  # nothing to check until then
            return
        packed = self.compressed()
        self._bound = self.allowance + self.ratio * packed
        if self.count > self._bound:
            raise LimitExceeded(
                f"the file is mostly blank: {self.count:,} bytes of blank lines or empty "
                f"rows from {packed:,.0f} bytes of compressed upload, more than "
                f"{self.ratio} times as many (the import's limit; a compression bomb?)"
            )


#: The reader's side of `BlankLines`: the output lines its parser has taken, if it stands at
#: the start of a record (outside any quoted cell); None when it does not or cannot tell.
Position = Callable[[], "int | None"]


class BlankLines(io.RawIOBase):
    """Text bytes on their way to a line parser, runs of blank lines replaced in bulk.

    A run of whole blank lines (empty, or holding only `blank` bytes: a CSV's delimiter,
    a JSON line's whitespace) becomes one empty line, and `runs` gets (that line's number
    in the output, the lines it stood for): the reader numbers its rows as in the file.
    Only chunks that look mostly blank are searched, and only once `position` says where
    the parser stands, so that a quoted cell spanning lines (`quote`) keeps every line.
    """

    def __init__(
        self, source: BinaryIO, budget: Budget, *, blank: bytes = b"", quote: bytes = b""
    ) -> None:
        self._source = source
        self._budget = budget
        self._blank = blank
        self._blank_or_break = blank + b"\r\n"
        self._span = re.compile(b"[" + re.escape(self._blank_or_break) + b"]+").match
        self._quotes = _Quotes(blank) if quote else None
        self.runs: deque[tuple[int, int]] = deque()
        self.position: Position | None = None
        self._held = b""  #: a partial last line, or one ending in a CR that may be a CRLF's
        self._out = memoryview(b"")
        self._at = 0
        #: how the last output ended: "\r" (the parser holds that line until it sees the
        #: next byte), "" (mid-line) or "\n"
        self._end = b"\n"
        self._end_quoted = False  #: the last output line ends in "\r" and holds a quote

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._at >= len(self._out):
            self._out, self._at = memoryview(self._next()), 0
        n = min(len(buffer), len(self._out) - self._at)
        buffer[:n] = self._out[self._at : self._at + n]
        self._at += n
        return n

    def _next(self) -> bytes:
        while chunk := self._source.read(CHUNK):
            data = self._held + chunk if self._held else chunk
            cut = _after_last_break(data)
            if cut < 0 and len(data) <= MAX_HELD:
                self._held = data
                continue
            body, self._held = (data, b"") if cut < 0 else (data[:cut], data[cut:])
            return self._emit(self._collapsed(body) if self._worth_a_look(body) else body)
        body, self._held = self._held, b""
        return self._emit(body)

    def _emit(self, body: bytes) -> bytes:
        if body:
            self._end = body[-1:] if body[-1:] in b"\r\n" else b""
            if self._end == b"\r" and self._quotes is not None:
                self._end_quoted = b'"' in body[_line_start(body, len(body) - 1) :]
        return body

    def _worth_a_look(self, body: bytes) -> bool:
        if self.position is None or not self._end:
            return False
        return self._blank_run_in(body[:SAMPLE]) or self._blank_run_in(body[-SAMPLE:])

    def _blank_run_in(self, sample: bytes) -> bool:
        """Whether a sample is mostly blank and holds a whole blank line: a sparse CSV's
        rows are mostly delimiters, a double-spaced file's blank lines are few bytes."""
        if len(sample.translate(None, self._blank_or_break)) * 2 > len(sample):
            return False
        blank = self._blank
        return any(not line.translate(None, blank) for line in sample.splitlines()[1:-1])

    def _collapsed(self, body: bytes) -> bytes:
        assert self.position is not None
        lines = self.position()
        if lines is None:
            return body
        if self._end == b"\r":  # the parser holds the last line until it sees our next byte
            if self._end_quoted:
                return body
            lines += 1
        guarded = self._quotes.cells(body) if self._quotes is not None else []
        return self._replace_runs(body, lines, guarded)

    def _replace_runs(self, body: bytes, lines: int, guarded: list[tuple[int, int]]) -> bytes:
        """Each run of blank lines outside the guarded spans as one empty line."""
        pieces: list[bytes] = []
        done = pos = 0  # body[done:pos] is still to be copied as it is
        ends = _LineEnds(body)
        guarded.append((len(body), len(body)))
        guard = 0
        while pos < len(body):
            start, stop = guarded[guard]
            run = self._run(body, pos, start)
            if run > pos:
                lines += _count_lines(body, done, pos) + 1
                pieces += (body[done:pos], MARK)
                self.runs.append((lines, _count_lines(body, pos, run)))
                self._budget.add(run - pos)
                done = pos = run
                continue
            pos = ends.after(pos)  # a line that holds something
            while pos > start:  # ... and starts a quoted cell spanning lines
                pos = ends.after(stop)
                guard += 1
                start, stop = guarded[guard]
        pieces.append(body[done:])
        return b"".join(pieces)

    def _run(self, body: bytes, pos: int, end: int) -> int:
        """Where the blank lines starting at `pos` end (`pos` if there are none)."""
        found = self._span(body, pos, end)
        if found is None:
            return pos
        last = max(body.rfind(b"\n", pos, found.end()), body.rfind(b"\r", pos, found.end()))
        return last + 1 if last >= 0 else pos


class _LineEnds:
    """Where lines end in a body of whole lines: after a LF, a CRLF or a lone CR."""

    def __init__(self, body: bytes) -> None:
        self._body = body
        self._cr = -1  # the next CR, cached: LF files have none, and finding that is O(n)

    def after(self, pos: int) -> int:
        """The start of the line after the one `pos` is in."""
        body = self._body
        if self._cr < pos:
            self._cr = body.find(b"\r", pos)
        lf = body.find(b"\n", pos)
        cr = self._cr
        if cr < 0 or 0 <= lf < cr:
            return lf + 1 if lf >= 0 else len(body)
        return cr + 2 if body[cr + 1 : cr + 2] == b"\n" else cr + 1


class _Quotes:
    """CSV quoting as the csv module reads it: a quote opens a cell only at the start of a
    field, and a doubled quote inside one is a quote."""

    def __init__(self, delimiter: bytes) -> None:
        d = re.escape(delimiter)
        # from the start of a record: text, stray quotes, and quoted cells within one line
        self._plain = re.compile(
            b'(?:[^"]+|(?<![' + d + b'\\r\\n])"|"[^"\\r\\n]*(?:""[^"\\r\\n]*)*"(?!"))*'
        ).match
        self._close = re.compile(b'[^"]*(?:""[^"]*)*"(?!")').match

    def cells(self, body: bytes) -> list[tuple[int, int]]:
        """The quoted cells of `body` that span lines (the last may run past its end), for a
        body that starts at the start of a record."""
        found: list[tuple[int, int]] = []
        if b'"' not in body:
            return found
        text = b"\n" + body  # a quote at the very start opens a cell: a line starts there
        pos = 1
        while (pos := _end(self._plain(text, pos), pos)) < len(text):
            closed = self._close(text, pos + 1)
            end = closed.end() if closed is not None else len(text)
            found.append((pos - 1, end - 1))
            pos = end
        return found


def _end(match: re.Match[bytes] | None, pos: int) -> int:
    return pos if match is None else match.end()


def _after_last_break(data: bytes) -> int:
    """Where the last whole line of `data` ends; -1 if none does. A CR at the very end may
    be the first half of a CRLF: that line is not known to be whole yet."""
    last = max(data.rfind(b"\n"), data.rfind(b"\r", 0, len(data) - 1))
    return last + 1 if last >= 0 else -1


def _line_start(body: bytes, end: int) -> int:
    return max(body.rfind(b"\n", 0, end), body.rfind(b"\r", 0, end)) + 1


def _count_lines(body: bytes, start: int, end: int) -> int:
    """Line breaks between `start` and `end`, a CRLF counted once."""
    return (
        body.count(b"\n", start, end)
        + body.count(b"\r", start, end)
        - body.count(b"\r\n", start, end)
    )
