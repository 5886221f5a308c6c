"""Content-type rules of uploads: what a file's type is, and which types an import reads.

Pure: no unit of work, no store. Not in `service/domain` only because `mimetypes` reads the
host's mime.types on first use.
"""

from __future__ import annotations

import mimetypes

from service.domain.errors import InvalidInput

DEFAULT_CONTENT_TYPE = "application/octet-stream"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#: Media types an import reads (service/bulk sniffs CSV, JSON Lines, XLSX, optionally gzipped).
IMPORT_CONTENT_TYPES = frozenset(
    {
        "text/csv",
        "text/plain",
        "text/tab-separated-values",
        "application/csv",
        "application/x-ndjson",
        "application/jsonl",
        "application/x-jsonlines",
        "application/json",
        XLSX,
        "application/gzip",
        "application/x-gzip",
        DEFAULT_CONTENT_TYPE,
    }
)
#: Types of the file names an import reads, fixed here rather than taken from the host's
#: mime.types, so that such a name gets an accepted type on every machine.
_IMPORT_NAME_TYPES = {
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
    "txt": "text/plain",
    "json": "application/json",
    "jsonl": "application/x-ndjson",
    "ndjson": "application/x-ndjson",
    "xlsx": XLSX,
    "gz": "application/gzip",
}


class UnsupportedMediaType(InvalidInput):
    """The file's content type is not one this service accepts here."""


def content_type_of(file_name: str, declared: str | None = None) -> str:
    """The declared content type, else the one the file name suggests, else the generic one."""
    if declared:
        return declared
    stem, dot, extension = file_name.lower().rpartition(".")
    fixed = _IMPORT_NAME_TYPES.get(extension) if dot and stem else None
    return fixed or mimetypes.guess_type(file_name)[0] or DEFAULT_CONTENT_TYPE


def media_type(content_type: str) -> str:
    """The type without its parameters, lowercase: "Text/CSV; charset=utf-8" -> "text/csv"."""
    return content_type.split(";", 1)[0].strip().lower()


def check_import_type(content_type: str, *, field: str) -> None:
    """Refuse an import input whose content type the import cannot read (415)."""
    if media_type(content_type) not in IMPORT_CONTENT_TYPES:
        accepted = ", ".join(sorted(IMPORT_CONTENT_TYPES))
        raise UnsupportedMediaType(f"an import reads {accepted}; not {content_type}", field=field)


def check_sent_type(sent: str | None, declared: str) -> None:
    """Refuse bytes sent as another type than the file's (parameters and case aside), as S3
    refuses a PUT its presigned URL was not signed for; bytes without a type are taken."""
    if sent is not None and media_type(sent) != media_type(declared):
        raise UnsupportedMediaType(
            f"this upload URL takes Content-Type {declared} (see uploadHeaders), not {sent}"
        )
