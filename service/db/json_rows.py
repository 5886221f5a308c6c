"""PostgreSQL: many rows in one INSERT, from one JSON parameter read with json_to_recordset().

The group commit's statement took one array parameter per column (service.db.arrays): asyncpg
encodes each element of each array by its type, which for a group of 8 new tasks cost ~1.0 ms
of client CPU against ~0.45 ms for the same rows as one JSON document (orjson, in C), with the
server's CPU about the same (json_to_recordset against unnest; this machine, 2026-12-07). WITH
ORDINALITY keeps the rows' order, so the serial ids the database hands out follow it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from sqlalchemy import Column, Table

from service.db import json_codec
from service.db.arrays import array_type


def _is_json(column: Column[Any]) -> bool:
    return array_type(column) in ("json", "jsonb")


def _read_as(column: Column[Any]) -> str:
    """The type a column's value is read as from the document: text for text (its length is
    the INSERT's to check) and for JSON (written as its own text and cast on the way in, so an
    integer beyond 64 bits survives as json_codec writes it)."""
    name = array_type(column)
    return "text" if name == "varchar" or _is_json(column) else name


@dataclass(frozen=True)
class JsonInsert:
    """INSERT INTO table SELECT FROM json_to_recordset(:<parameter>) WITH ORDINALITY, in the
    document's order: every column but `skip`; the columns of `constants` take that SQL
    expression in every row instead (a literal, or a parameter of one value)."""

    table: Table
    parameter: str
    skip: tuple[str, ...] = ()
    constants: Mapping[str, str] = field(default_factory=dict)

    @functools.cached_property
    def _written(self) -> list[Column[Any]]:
        return [c for c in self.table.c if c.name not in self.skip]

    @functools.cached_property
    def read(self) -> tuple[str, ...]:
        """The columns the document carries (as plain str: orjson takes no subclass of it, such
        as SQLAlchemy's quoted_name, for a key)."""
        return tuple(str(c.name) for c in self._written if c.name not in self.constants)

    @functools.cached_property
    def _json(self) -> tuple[str, ...]:
        return tuple(name for name in self.read if _is_json(self.table.c[name]))

    @property
    def sql(self) -> str:
        values = ", ".join(self._value(c) for c in self._written)
        record = ", ".join(f"{name} {_read_as(self.table.c[name])}" for name in self.read)
        return (
            f"INSERT INTO {self.table.name} ({', '.join(c.name for c in self._written)})"
            f" SELECT {values}"
            f" FROM ROWS FROM (json_to_recordset(CAST(:{self.parameter} AS json)) AS ({record}))"
            f" WITH ORDINALITY AS v({', '.join(self.read)}, n) ORDER BY v.n"
        )

    def _value(self, column: Column[Any]) -> str:
        if column.name in self.constants:
            return self.constants[column.name]
        if _is_json(column):
            return f"CAST(v.{column.name} AS {array_type(column)})"
        return f"v.{column.name}"

    def document(self, rows: Sequence[Mapping[str, Any]]) -> str:
        """The rows as the statement's parameter: a JSON array of objects of the columns it
        reads (a row's missing key is NULL), JSON values as their own text."""
        objects = []
        for row in rows:
            item = {name: row.get(name) for name in self.read}
            for name in self._json:
                value = item[name]
                item[name] = None if value is None else json_codec.dumps(value)
            objects.append(item)
        try:
            return orjson.dumps(objects).decode()
        except TypeError:  # what orjson refuses (a lone surrogate): json writes it escaped
            return json.dumps(objects, default=_plain)


def _plain(value: Any) -> str:
    """A uuid or a datetime as orjson writes it, for json.dumps."""
    if isinstance(value, UUID | datetime):
        return value.isoformat() if isinstance(value, datetime) else str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def literal(value: bool | int | None) -> str:
    """A constant of JsonInsert as SQL: NULL, a boolean or an integer (nothing else, so no
    text can get into the statement)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(int(value))
