"""PostgreSQL: many rows in one INSERT, as one array parameter per column read with unnest().

An executemany runs its statement once per row in the server, and SQLAlchemy prepares each row's
parameters one by one; a multi-row VALUES is a new statement text per size. One array per column
is the same statement whatever the number of rows (prepared once), and WITH ORDINALITY keeps
the rows' order, so the serial ids the database hands out follow it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Column, Table
from sqlalchemy.dialects import postgresql

from service.db import json_codec

_PG = postgresql.dialect()  # type: ignore[no-untyped-call]  # the dialect's types, for DDL text


@functools.cache  # compiling a type takes ~2 µs: not for every column of every batch
def array_type(column: Column[Any]) -> str:
    """The PostgreSQL array type a column's values travel in. Text goes as varchar[] without
    its length: an explicit cast would cut a long value short, where the INSERT refuses it."""
    name = str(column.type.compile(dialect=_PG))
    return "varchar" if name.startswith("VARCHAR") else name.lower()


def insert_from_arrays(table: Table, prefix: str = "", *, skip: tuple[str, ...] = ()) -> str:
    """INSERT INTO table SELECT FROM unnest(one array parameter per column but `skip`, named
    :<prefix><column>) WITH ORDINALITY, in the arrays' order."""
    columns = [c for c in table.c if c.name not in skip]
    names = ", ".join(c.name for c in columns)
    arrays = ", ".join(f"CAST(:{prefix}{c.name} AS {array_type(c)}[])" for c in columns)
    return (
        f"INSERT INTO {table.name} ({names}) SELECT {names}"
        f" FROM unnest({arrays}) WITH ORDINALITY AS v({names}, n) ORDER BY v.n"
    )


def arrays_of(
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    prefix: str = "",
    *,
    skip: tuple[str, ...] = (),
) -> dict[str, list[Any]]:
    """The rows as the parameters of `insert_from_arrays(table, prefix, skip=skip)`: one list
    per column, JSON values as their text."""
    arrays: dict[str, list[Any]] = {}
    for column in table.c:
        if column.name in skip:
            continue
        values = [row.get(column.name) for row in rows]
        if array_type(column) == "jsonb":
            values = [None if v is None else json_codec.dumps(v) for v in values]
        arrays[f"{prefix}{column.name}"] = values
    return arrays
