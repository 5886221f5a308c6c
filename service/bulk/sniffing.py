"""Guessing what an upload is: its format, whether it is UTF-8, and its CSV delimiter."""

from __future__ import annotations

import codecs
from typing import Literal, get_args

from service.bulk.errors import NotUtf8, UnknownFormat

Format = Literal["csv", "jsonl", "xlsx"]
FORMATS: tuple[Format, ...] = get_args(Format)

ZIP_MAGIC = b"PK\x03\x04"
#: Candidates in tie-break order: the most common first.
DELIMITERS = (",", ";", "\t", "|")
_EXTENSIONS: dict[str, Format] = {
    "csv": "csv",
    "tsv": "csv",
    "txt": "csv",
    "jsonl": "jsonl",
    "ndjson": "jsonl",
    "json": "jsonl",
    "xlsx": "xlsx",
}
_FOREIGN_BOMS = {
    codecs.BOM_UTF32_LE: "UTF-32",
    codecs.BOM_UTF32_BE: "UTF-32",
    codecs.BOM_UTF16_LE: "UTF-16",
    codecs.BOM_UTF16_BE: "UTF-16",
}


def parse_format(name: str) -> Format:
    """A format name as given by a caller, checked."""
    lowered = name.strip().lower()
    for fmt in FORMATS:
        if fmt == lowered:
            return fmt
    raise UnknownFormat(f"unknown file format {name!r}; use one of {', '.join(FORMATS)}")


def detect_format(head: bytes, *, fmt: Format | None, filename: str | None) -> Format:
    """The caller's format if given, else the file name's, else a guess from the content."""
    is_zip = head.startswith(ZIP_MAGIC)
    chosen = fmt or _from_name(filename)
    if chosen is None:
        return _from_content(head, is_zip=is_zip)
    if is_zip and chosen != "xlsx":
        raise UnknownFormat(f"the file is a zip archive (an XLSX workbook?), not {chosen}")
    if chosen == "xlsx" and not is_zip:
        raise UnknownFormat("the file is not an XLSX workbook (no zip signature)")
    return chosen


def format_of_name(filename: str) -> Format | None:
    """The format a file name announces; None without an extension (the content decides).

    ValueError for an extension this service does not read (e.g. a PDF), so that an import of
    the wrong file is refused when the task is created rather than after the upload.
    """
    name = filename.lower().removesuffix(".gz")
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem:
        return None
    if extension not in _EXTENSIONS:
        known = ", ".join(f".{e}" for e in _EXTENSIONS)
        raise ValueError(
            f"{filename!r} is not a file this service imports: use {known} (optionally .gz), "
            "or name the format in params.format"
        )
    return _EXTENSIONS[extension]


def _from_name(filename: str | None) -> Format | None:
    if not filename:
        return None
    name = filename.lower().removesuffix(".gz")
    _, dot, extension = name.rpartition(".")
    return _EXTENSIONS.get(extension) if dot else None


def _from_content(head: bytes, *, is_zip: bool) -> Format:
    if is_zip:
        return "xlsx"
    return "jsonl" if head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{" else "csv"


def check_utf8(head: bytes, *, complete: bool) -> None:
    """Refuse a file whose first bytes are not UTF-8, before any row is imported."""
    for bom, name in _FOREIGN_BOMS.items():
        if head.startswith(bom):
            raise NotUtf8(f"the file is {name} encoded; save it as UTF-8")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=complete)
    except UnicodeDecodeError as error:
        bad = error.object[error.start : error.start + 1]
        raise NotUtf8(not_utf8_message(bad, error.start)) from None
    if b"\x00" in head[:4096]:
        raise NotUtf8("the file contains NUL bytes (UTF-16 without a byte order mark?)")


def not_utf8_message(byte: bytes, offset: int) -> str:
    return (
        f"the file is not UTF-8: byte 0x{byte.hex()} at offset {offset} "
        "(Windows-1252 or Latin-1?); save it as UTF-8"
    )


def sniff_delimiter(header_line: str) -> str:
    """The candidate that splits the header line most often, outside quotes."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for char in header_line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(DELIMITERS, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","
