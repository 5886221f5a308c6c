"""File-level problems that stop an import; a bad row is a `rows.RowError` instead."""

from __future__ import annotations

from service.domain.errors import PermanentFailure


class BadFile(PermanentFailure):
    """The file cannot be read as an import file."""


class UnknownFormat(BadFile):
    """The file format is not one of csv, jsonl or xlsx."""


class NotUtf8(BadFile):
    """The file is not UTF-8 text; save it as UTF-8 (in Excel: "CSV UTF-8")."""


class CorruptFile(BadFile):
    """The file is damaged or truncated."""


class LimitExceeded(BadFile):
    """The file exceeds a size limit of the import."""


class BadHeader(BadFile):
    """The header row is missing, empty or has duplicate column names."""


class MissingColumns(BadHeader):
    """The header lacks columns that every row needs."""
