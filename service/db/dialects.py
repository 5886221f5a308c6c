"""The few places where PostgreSQL and SQLite need different SQL."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    exists,
    func,
    literal,
    select,
    text,
    type_coerce,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert


def lock_skip_locked(stmt: Select[tuple[object]], dialect: str) -> Select[tuple[object]]:
    """PostgreSQL: rows another transaction holds are skipped, so claimers never block or collide.

    SQLite has no row locks; its BEGIN IMMEDIATE (see engine.py) already makes the whole
    claim one writer's atomic step.
    """
    if dialect == "postgresql":
        return stmt.with_for_update(skip_locked=True)
    return stmt


def insert_ignoring_conflicts(table: Table, dialect: str) -> Insert:
    """INSERT … ON CONFLICT DO NOTHING."""
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


def insert_or_update(
    table: Table,
    dialect: str,
    values: dict[str, Any],
    *,
    keys: list[str],
    set_: list[str],
    where: Callable[[Any], Any],
) -> Insert:
    """INSERT … ON CONFLICT (keys) DO UPDATE SET set_ = the new values WHERE where(excluded).

    `where` gets the statement's `excluded` row (the values that conflicted); a row it
    rejects is left alone and returns nothing, as with DO NOTHING.
    """
    stmt = (postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)).values(
        **values
    )
    return stmt.on_conflict_do_update(
        index_elements=keys,
        set_={name: stmt.excluded[name] for name in set_},
        where=where(stmt.excluded),
    )


async def try_exclusive(session: AsyncSession, key: int) -> bool:
    """Take a transaction-scoped exclusive lock named by `key`, or say it is held elsewhere."""
    if session.get_bind().dialect.name == "postgresql":
        result = await session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": key})
        return bool(result.scalar_one())
    return True  # BEGIN IMMEDIATE already serialises every SQLite writer


def name(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def json_list_holds_all(column: Any, values: Sequence[str], dialect: str) -> ColumnElement[bool]:
    """The JSON list in `column` holds every one of `values` (strings).

    PostgreSQL: JSONB containment (`tags @> '["a","b"]'`), which a GIN index can serve;
    SQLite: one `EXISTS (SELECT 1 FROM json_each(tags) WHERE value = :v)` per value.
    """
    if dialect == "postgresql":
        return type_coerce(column, postgresql.JSONB()).contains(list(values))
    checks = []
    for value in values:
        each = func.json_each(column).table_valued("value")
        checks.append(exists(select(literal(1)).select_from(each).where(each.c.value == value)))
    return and_(*checks)
