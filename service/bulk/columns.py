"""Columns of an export and how their cells are rendered."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Kind(enum.Enum):
    """What a column holds; writers render and neutralise cells by kind."""

    TEXT = "text"  #: free text; CSV cells are neutralised against formula injection
    INTEGER = "integer"  #: whole numbers, rendered as digits (a leading '-' is kept)
    DECIMAL = "decimal"  #: fixed-point numbers, rendered with `Column.scale` places
    BOOLEAN = "boolean"  #: rendered as true / false
    DATETIME = "datetime"  #: ISO 8601, UTC rendered with a trailing Z
    JSON = "json"  #: an object or list; a compact JSON string in CSV and XLSX


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a file: its header name and kind."""

    name: str
    kind: Kind = Kind.TEXT
    scale: int = 2  #: decimal places of a DECIMAL column


def names(columns: tuple[Column, ...]) -> tuple[str, ...]:
    return tuple(column.name for column in columns)
