"""Workbook XML through expat, fed in chunks: no DTD, no entity, no unbounded text.

Not ElementTree (or defusedxml's wrapper of it): its tree builder holds an element's whole
text before a caller sees it, and a sheet cell's text is what an attacker inflates. Expat's
own handlers see the text in pieces, so a reader can stop keeping it past a limit. DTDs are
refused outright, as defusedxml's `forbid_dtd` does: a workbook never has one, and without
a DTD there are no entities to expand (billion laughs, quadratic blow-up, external ones).
"""

from __future__ import annotations

import contextlib
import zipfile
import zlib
from collections.abc import Callable, Iterator
from typing import IO, Any
from xml.parsers import expat

from service.bulk.errors import CorruptFile

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
DOC_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PACKAGE_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
CHUNK = 64 * 1024
#: Bytes of one tag, comment or processing instruction. Expat holds such a token whole
#: (unlike text, which it hands over in pieces), so a 200 MB attribute would be 200 MB.
MAX_TOKEN = 4 * 1024**2
#: Errors of reading a zip member: a damaged or truncated archive.
_DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError)


def main(local: str) -> str:
    """An element's name in the spreadsheet namespace, as the parser reports it."""
    return f"{MAIN} {local}"


def create(part: str) -> expat.XMLParserType:
    """A namespace-aware parser ("uri local" names) that refuses a DTD."""
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.buffer_text = True  # text in as few pieces as expat can: fewer Python calls
    parser.buffer_size = CHUNK

    def refuse(*_: Any) -> None:
        raise CorruptFile(f"{part} declares a DTD, which a workbook never has")

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse  # an internal subset without a DOCTYPE event
    return parser


def feed(parser: expat.XMLParserType, source: IO[bytes], part: str) -> Iterator[bytes]:
    """Parse `source` a chunk at a time, yielding each chunk after its handlers ran.

    Every element and every piece of text is an event for the parsers here, so bytes fed
    since the last event (`CurrentByteIndex`) are an unfinished token.
    """
    fed = 0
    with translated(part):
        while chunk := source.read(CHUNK):
            parser.Parse(chunk, False)
            fed += len(chunk)
            if fed - parser.CurrentByteIndex > MAX_TOKEN:
                raise CorruptFile(f"{part} has a tag or comment longer than {MAX_TOKEN} bytes")
            yield chunk
        parser.Parse(b"", True)


def parse_all(data: bytes, part: str, start: Callable[[str, dict[str, str]], None]) -> None:
    """Run `start` for every element of a small part read whole."""
    parser = create(part)
    parser.StartElementHandler = start
    with translated(part):
        parser.Parse(data, True)


@contextlib.contextmanager
def translated(part: str) -> Iterator[None]:
    """Expat's and zipfile's errors as a damaged workbook, naming the part."""
    try:
        yield
    except expat.ExpatError as error:
        raise CorruptFile(f"{part} is not well-formed XML: {error}") from error
    except _DAMAGED as error:
        raise CorruptFile(f"{part} is damaged or truncated: {error}") from error
