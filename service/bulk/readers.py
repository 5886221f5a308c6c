"""`open_reader`: an upload in, rows out, whatever its format and compression."""

from __future__ import annotations

import gzip
import io
import zlib
from typing import Any, BinaryIO

from service.bulk import sniffing, streams
from service.bulk.errors import CorruptFile
from service.bulk.formats.base import RowReader
from service.bulk.formats.csvfile import CsvReader
from service.bulk.formats.jsonl import JsonlReader
from service.bulk.limits import DEFAULT_LIMITS, ReadLimits
from service.bulk.sniffing import Format

Reader = RowReader[Any]


def open_reader(
    stream: BinaryIO,
    *,
    fmt: Format | None = None,
    filename: str | None = None,
    limits: ReadLimits = DEFAULT_LIMITS,
    delimiter: str | None = None,
    start_after: int = 0,
    stop: streams.Stop | None = None,
) -> Reader:
    """A lazy reader of the upload's rows, positioned after row `start_after`.

    gzip is recognised by its magic bytes. The format is `fmt`, else the file name's
    extension (a trailing .gz ignored), else a guess from the first bytes. File-level
    problems raise `errors.BadFile`; row-level ones are yielded as `rows.RowError`.
    Closing the reader leaves `stream` open. Setting `stop` (from another thread) makes the
    reader raise `streams.Stopped` at the next chunk it reads.
    """
    try:
        reader = _open(
            stream, fmt=fmt, filename=filename, limits=limits, delimiter=delimiter, stop=stop
        )
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise CorruptFile(f"the compressed data is damaged or truncated: {error}") from error
    if start_after:
        try:
            reader.skip(start_after)
        except BaseException:
            reader.close()
            raise
    return reader


def _open(
    stream: BinaryIO,
    *,
    fmt: Format | None,
    filename: str | None,
    limits: ReadLimits,
    delimiter: str | None,
    stop: streams.Stop | None,
) -> Reader:
    meter = streams.Meter()
    opened = streams.open_upload(
        stream, max_decompressed_bytes=limits.max_decompressed_bytes, meter=meter, stop=stop
    )
    chosen = sniffing.detect_format(opened.head, fmt=fmt, filename=filename)
    reader: Reader
    if chosen == "xlsx":
        # imported here: openpyxl costs every process ~70 ms of start-up, and only workbooks
        # need it
        from service.bulk.formats.xlsx import XlsxReader

        file = streams.seekable_copy(opened)
        return XlsxReader(
            file,
            compressed=opened.compressed,
            limits=limits,
            meter=meter,
            stop=stop,
            upload_share=_upload_share(opened, file),
        )
    sniffing.check_utf8(opened.head, complete=len(opened.head) < streams.HEAD_BYTES)
    if chosen == "jsonl":
        reader = JsonlReader(opened.body, compressed=opened.compressed, limits=limits)
    else:
        reader = CsvReader(
            opened.body,
            opened.head,
            compressed=opened.compressed,
            limits=limits,
            delimiter=delimiter,
        )
    reader.meter = meter
    if opened.packed is not None:
        packed = opened.packed
        reader.blank_budget.compressed = lambda: packed.consumed
    return reader


def _upload_share(opened: streams.Opened, workbook: BinaryIO) -> float:
    """Bytes of the upload a byte of the workbook took: 1, or less for a gzipped one."""
    if opened.packed is None:
        return 1.0
    size = workbook.seek(0, io.SEEK_END)
    workbook.seek(0)
    return opened.packed.consumed / max(size, 1)
