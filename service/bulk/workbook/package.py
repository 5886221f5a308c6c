"""The zip of a workbook and the parts an import reads, found through its relationships."""

from __future__ import annotations

import posixpath
import zipfile
from dataclasses import dataclass
from typing import BinaryIO

from service.bulk.errors import CorruptFile, LimitExceeded
from service.bulk.limits import ReadLimits
from service.bulk.workbook import xmlparse

_RELATIONSHIP = f"{xmlparse.PACKAGE_RELS} Relationship"
_SHEET = xmlparse.main("sheet")
_WORKBOOK_PROPERTIES = xmlparse.main("workbookPr")
_SHEET_ID = f"{xmlparse.DOC_RELS} id"
_DEFAULT_WORKBOOK = "xl/workbook.xml"


@dataclass(frozen=True, slots=True)
class Parts:
    """Where the first worksheet and what it refers to are in the zip."""

    sheet: str
    strings: str | None  #: the shared-string table, if the workbook has one
    styles: str | None  #: the stylesheet, which says which numbers are dates
    date1904: bool  #: dates count from 1904 (old Mac workbooks), not 1900


def open_archive(file: BinaryIO, limits: ReadLimits) -> zipfile.ZipFile:
    """The workbook's zip, if what it unpacks to stays within the limits.

    The sizes are those its directory declares; zipfile stops a member at its declared size
    (and fails on a CRC mismatch), so a lying directory cannot make a member larger.
    """
    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise CorruptFile(f"the file is not a valid XLSX workbook: {error}") from error
    members = archive.infolist()
    unpacked = sum(member.file_size for member in members)
    if unpacked > limits.max_decompressed_bytes:
        limit = limits.max_decompressed_bytes
        raise LimitExceeded(f"the workbook unpacks to {unpacked} bytes; the limit is {limit}")
    return archive


def find_parts(archive: zipfile.ZipFile, limits: ReadLimits) -> Parts:
    """The first worksheet (in the workbook's order), its string table and stylesheet."""
    names = set(archive.namelist())
    book = _targets(archive, "", names, limits).get("officeDocument", [_DEFAULT_WORKBOOK])[0]
    if book not in names:
        raise CorruptFile("the file is a zip archive without a workbook in it")
    by_id: dict[str, tuple[str, str]] = {}
    related = _targets(archive, book, names, limits, by_id)
    sheet_ids: list[str] = []
    date1904 = False

    def start(name: str, attrs: dict[str, str]) -> None:
        nonlocal date1904
        if name == _SHEET and _SHEET_ID in attrs:
            sheet_ids.append(attrs[_SHEET_ID])
        elif name == _WORKBOOK_PROPERTIES:
            date1904 = attrs.get("date1904", "0").lower() in ("1", "true")

    xmlparse.parse_all(read_small(archive, book, limits), book, start)
    sheets = [by_id[i][1] for i in sheet_ids if by_id.get(i, ("", ""))[0] == "worksheet"]
    if not sheets:
        raise CorruptFile("the workbook has no worksheet")
    first = related.get
    return Parts(sheets[0], _one(first("sharedStrings")), _one(first("styles")), date1904)


def read_small(archive: zipfile.ZipFile, name: str, limits: ReadLimits) -> bytes:
    """A part that is parsed whole (relationships, workbook, styles): it must be small."""
    size = archive.getinfo(name).file_size
    if size > limits.max_xml_part_bytes:
        raise LimitExceeded(
            f"the workbook's {name} is {size} bytes; the limit is {limits.max_xml_part_bytes}"
        )
    with xmlparse.translated(name):
        return archive.read(name)


def _one(targets: list[str] | None) -> str | None:
    return targets[0] if targets else None


def _targets(
    archive: zipfile.ZipFile,
    source: str,
    names: set[str],
    limits: ReadLimits,
    by_id: dict[str, tuple[str, str]] | None = None,
) -> dict[str, list[str]]:
    """The parts `source` relates to that are in the zip, by relationship type (its last
    word: "worksheet", "styles" …), in document order; `by_id` gets them by id as well."""
    folder, file = posixpath.split(source)
    rels = posixpath.join(folder, "_rels", f"{file}.rels")
    found: dict[str, list[str]] = {}
    if rels not in names:
        return found

    def start(name: str, attrs: dict[str, str]) -> None:
        if name != _RELATIONSHIP or attrs.get("TargetMode") == "External":
            return
        target = _resolve(folder, attrs.get("Target", ""))
        kind = attrs.get("Type", "").rpartition("/")[2]
        if target in names:
            found.setdefault(kind, []).append(target)
            if by_id is not None:
                by_id[attrs.get("Id", "")] = (kind, target)

    xmlparse.parse_all(read_small(archive, rels, limits), rels, start)
    return found


def _resolve(folder: str, target: str) -> str:
    if target.startswith("/"):
        return posixpath.normpath(target.lstrip("/"))
    return posixpath.normpath(posixpath.join(folder, target))
