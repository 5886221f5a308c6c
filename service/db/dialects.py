"""The few places where PostgreSQL and SQLite need different SQL."""

from __future__ import annotations

from sqlalchemy import Select, Table, text
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


async def try_exclusive(session: AsyncSession, key: int) -> bool:
    """Take a transaction-scoped exclusive lock named by `key`, or say it is held elsewhere."""
    if session.get_bind().dialect.name == "postgresql":
        result = await session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": key})
        return bool(result.scalar_one())
    return True  # BEGIN IMMEDIATE already serialises every SQLite writer


def name(session: AsyncSession) -> str:
    return session.get_bind().dialect.name
