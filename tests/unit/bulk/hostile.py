"""Hostile uploads, built the way an attacker would: a few kilobytes that unpack to a lot.

The workbooks are written part by part with zipfile, their sheet XML streamed in chunks, so
building a 200 MB cell costs the test (or bench/bench_bulk_hostile.py) no 200 MB of memory.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from collections.abc import Iterable, Iterator
from typing import BinaryIO

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
DOC_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.worksheet+xml"/>'
)
_STRINGS_TYPE = (
    '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.sharedStrings+xml"/>'
)
_ROOT_RELS = (
    f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{RELS}">'
    f'<Relationship Id="rId1" Type="{DOC_RELS}/officeDocument" Target="xl/workbook.xml"/>'
    "</Relationships>"
)
_WORKBOOK = (
    f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{MAIN}" xmlns:r="{DOC_RELS}">'
    '<sheets><sheet name="data" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{RELS}">'
    f'<Relationship Id="rId1" Type="{DOC_RELS}/worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{DOC_RELS}/sharedStrings" Target="sharedStrings.xml"/>'
    "</Relationships>"
)
#: The opening of a sheet: its dimension (what openpyxl pads every row to) and its data.
SHEET_START = f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{MAIN}">'
SHEET_END = b"</sheetData></worksheet>"
HEADER_ROW = (
    b'<row r="1">'
    + b"".join(
        b'<c r="%s1" t="inlineStr"><is><t>%s</t></is></c>' % (column, name)
        for column, name in zip(
            (b"A", b"B", b"C", b"D"), (b"sku", b"name", b"price", b"currency"), strict=True
        )
    )
    + b"</row>"
)

#: A DTD whose entity expands a billion times (the "billion laughs").
LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{n} "{("&lol" + (str(n - 1) if n > 1 else "") + ";") * 10}">'.encode()
        for n in range(1, 10)
    )
    + b"]>"
)


def workbook(
    out: BinaryIO,
    sheet: Iterable[bytes],
    *,
    strings: Iterable[bytes] | None = None,
    workbook_xml: str = _WORKBOOK,
    compression: int = zipfile.ZIP_DEFLATED,
) -> None:
    """A minimal XLSX: one sheet streamed from `sheet`, shared strings from `strings`."""
    with zipfile.ZipFile(out, "w", compression, compresslevel=9) as archive:
        types = _CONTENT_TYPES + (_STRINGS_TYPE if strings is not None else "")
        archive.writestr("[Content_Types].xml", types + "</Types>")
        archive.writestr("_rels/.rels", _ROOT_RELS)
        archive.writestr("xl/workbook.xml", workbook_xml)
        archive.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        _stream(archive, "xl/worksheets/sheet1.xml", sheet)
        if strings is not None:
            _stream(archive, "xl/sharedStrings.xml", strings)


def _stream(archive: zipfile.ZipFile, name: str, chunks: Iterable[bytes]) -> None:
    with archive.open(name, "w", force_zip64=True) as member:
        for chunk in chunks:
            member.write(chunk)


def workbook_bytes(sheet: Iterable[bytes], **parts: Iterable[bytes] | None) -> bytes:
    out = io.BytesIO()
    workbook(out, sheet, **parts)  # type: ignore[arg-type]
    return out.getvalue()


def huge_cell_sheet(chars: int, *, chunk: int = 1 << 20) -> Iterator[bytes]:
    """A header and one row whose name cell is an inline string of `chars` characters."""
    yield SHEET_START.encode() + b'<dimension ref="A1:D2"/><sheetData>' + HEADER_ROW
    yield b'<row r="2"><c r="A2" t="inlineStr"><is><t>A-1</t></is></c>'
    yield b'<c r="B2" t="inlineStr"><is><t>'
    left = chars
    while left > 0:
        part = min(chunk, left)
        yield b"x" * part
        left -= part
    yield b'</t></is></c><c r="C2"><v>1.5</v></c>'
    yield b'<c r="D2" t="inlineStr"><is><t>EUR</t></is></c></row>' + SHEET_END


def many_rows_sheet(rows: int, *, dimension: str | None = None) -> Iterator[bytes]:
    """A header and `rows` one-cell rows, under a dimension that claims the widest sheet."""
    ref = dimension or f"A1:XFD{rows + 1}"
    yield SHEET_START.encode() + f'<dimension ref="{ref}"/><sheetData>'.encode() + HEADER_ROW
    block: list[bytes] = []
    for n in range(2, rows + 2):
        block.append(b'<row r="%d"><c r="A%d" t="inlineStr"><is><t>x</t></is></c></row>' % (n, n))
        if len(block) == 10_000:
            yield b"".join(block)
            block.clear()
    yield b"".join(block) + SHEET_END


def far_row_sheet(row: int) -> Iterator[bytes]:
    """A header and a single row far below it: the rows between exist only as a gap."""
    yield SHEET_START.encode() + b"<sheetData>" + HEADER_ROW
    yield b'<row r="%d"><c r="A%d" t="inlineStr"><is><t>x</t></is></c></row>' % (row, row)
    yield SHEET_END


def laughing_sheet() -> Iterator[bytes]:
    """A sheet whose one cell is the billion laughs."""
    yield LAUGHS + f'<worksheet xmlns="{MAIN}"><sheetData>'.encode() + HEADER_ROW
    yield b'<row r="2"><c r="A2" t="inlineStr"><is><t>&lol9;</t></is></c></row>' + SHEET_END


def string_table(count: int, width: int = 6) -> Iterator[bytes]:
    """A shared-string table of `count` distinct short strings."""
    yield f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{MAIN}">'.encode()
    block: list[bytes] = []
    for n in range(count):
        block.append(b"<si><t>%0*d</t></si>" % (width, n))
        if len(block) == 10_000:
            yield b"".join(block)
            block.clear()
    yield b"".join(block) + b"</sst>"


def empty_rows_sheet(rows: int) -> Iterator[bytes]:
    """A header and `rows` rows without a cell (`<row/>`, numbered by their order)."""
    yield SHEET_START.encode() + b"<sheetData>" + HEADER_ROW
    block = b"<row/>" * 10_000
    for _ in range(rows // 10_000):
        yield block
    yield b"<row/>" * (rows % 10_000) + SHEET_END


def empty_cells_sheet(rows: int, cells: int = 16_384) -> Iterator[bytes]:
    """A header and `rows` rows of `cells` cells without a value (`<c/>`): Excel's widest."""
    yield SHEET_START.encode() + b"<sheetData>" + HEADER_ROW
    row = b"<row>" + b"<c/>" * cells + b"</row>"
    for _ in range(rows):
        yield row
    yield SHEET_END


#: The header of the product CSVs here.
PRODUCT_HEADER = b"sku,name,price,currency\n"


def repeated_gzip(megabytes: int, line: bytes = b"\n", *, head: bytes = PRODUCT_HEADER) -> bytes:
    """`head`, then `line` repeated for `megabytes` MiB, gzip-compressed: a few hundred bytes a
    MiB when the line is a blank one."""
    out = io.BytesIO()
    block = line * ((1 << 20) // len(line))
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as packed:
        packed.write(head)
        for _ in range(megabytes):
            packed.write(block)
    return out.getvalue()


def one_value_rows_gzip(rows: int) -> bytes:
    """A product CSV header and `rows` rows of one value each: every row is a row error."""
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as packed:
        packed.write(b"sku,name,price,currency,stock\n")
        block = b"x\n" * 100_000
        for _ in range(rows // 100_000):
            packed.write(block)
        packed.write(b"x\n" * (rows % 100_000))
    return out.getvalue()
