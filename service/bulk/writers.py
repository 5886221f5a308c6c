"""`open_writer`: rows in, a CSV, JSON Lines or XLSX file (optionally gzip) out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import BinaryIO, assert_never

from service.bulk.columns import Column
from service.bulk.formats.base import RowWriter
from service.bulk.formats.csvfile import CsvWriter
from service.bulk.formats.jsonl import JsonlWriter
from service.bulk.sniffing import Format

CONTENT_TYPES: dict[Format, str] = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def open_writer(
    stream: BinaryIO,
    fmt: Format,
    columns: Sequence[Column],
    *,
    gzip: bool = False,
    bom: bool = False,
) -> RowWriter:
    """A writer of `columns` (in that order) into `stream`; `close()` it to finish the file.

    Output is deterministic for CSV and JSON Lines: the same rows give the same bytes, gzip
    included (no timestamp or name in its header). `bom` adds a UTF-8 BOM to CSV, which old
    Excel versions need to see UTF-8.
    """
    if fmt == "csv":
        return CsvWriter(stream, columns, compress=gzip, bom=bom)
    if fmt == "jsonl":
        return JsonlWriter(stream, columns, compress=gzip)
    if fmt == "xlsx":
        # imported here: openpyxl costs every process ~70 ms of start-up (see readers.py)
        from service.bulk.formats.xlsx import XlsxWriter

        return XlsxWriter(stream, columns, compress=gzip)
    assert_never(fmt)


def file_name(stem: str, fmt: Format, *, gzip: bool = False) -> str:
    """The conventional name of an export, e.g. products.csv.gz."""
    return f"{stem}.{fmt}{'.gz' if gzip else ''}"
