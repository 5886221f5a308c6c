"""Problems that stop an import for good; a bad row is a `rows.RowError` instead.

Each is a `PermanentFailure`: the worker fails the task at once, since reading the same
file again would fail the same way."""

from __future__ import annotations

from service.domain.errors import PermanentFailure


class TooManyRejectedRows(PermanentFailure):
    """The import stopped: more rows were rejected than its maxErrors allows."""


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
