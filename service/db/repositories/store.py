"""Queries on the built-in local store and on import bookkeeping (checkpoints, row errors)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from service.db import dialects
from service.db.tables import (
    checkpoints_table as C,
    row_errors_table as RE,
    store_records_table as S,
)


class StoreRepository:
    """Records by (entity, key); each batch is one statement."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.dialect = dialects.name(session)

    def _insert(self) -> Any:
        return (postgresql if self.dialect == "postgresql" else sqlite).insert(S)

    async def existing_keys(self, entity: str, keys: Sequence[str]) -> set[str]:
        if not keys:
            return set()
        stmt = select(S.c.key).where(S.c.entity == entity, S.c.key.in_(keys))
        return set((await self.session.execute(stmt)).scalars())

    async def insert_new(self, rows: list[dict[str, Any]]) -> set[str]:
        """Insert rows whose key is free; returns the keys inserted."""
        if not rows:
            return set()
        stmt = self._insert().on_conflict_do_nothing().returning(S.c.key)
        return set((await self.session.execute(stmt, rows)).scalars())

    async def upsert(self, rows: list[dict[str, Any]]) -> None:
        """Insert or replace each row's data."""
        if not rows:
            return
        insert = self._insert()
        stmt = insert.on_conflict_do_update(
            index_elements=[S.c.entity, S.c.key],
            set_={
                "data": insert.excluded.data,
                "updated_at": insert.excluded.updated_at,
                "source_task_id": insert.excluded.source_task_id,
            },
        )
        await self.session.execute(stmt, rows)

    async def page(
        self, entity: str, *, after: str | None, limit: int, conditions: Sequence[Any] = ()
    ) -> Sequence[Row[Any]]:
        """Records in key order after `after` (keyset paging)."""
        stmt = select(S.c.key, S.c.data).where(S.c.entity == entity, *conditions)
        if after is not None:
            stmt = stmt.where(S.c.key > after)
        return (await self.session.execute(stmt.order_by(S.c.key).limit(limit))).all()

    async def count(self, entity: str, conditions: Sequence[Any] = ()) -> int:
        stmt = select(func.count()).select_from(S).where(S.c.entity == entity, *conditions)
        return int((await self.session.execute(stmt)).scalar_one())


class ImportLedger:
    """Checkpoints and row errors of imports."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def checkpoint(self, task_id: UUID) -> Row[Any] | None:
        return (await self.session.execute(select(C).where(C.c.task_id == task_id))).one_or_none()

    async def save_checkpoint(self, task_id: UUID, values: dict[str, Any], now: datetime) -> None:
        updated = await self.session.execute(
            update(C).where(C.c.task_id == task_id).values(**values, updated_at=now)
        )
        if updated.rowcount == 0:  # type: ignore[attr-defined]
            await self.session.execute(C.insert().values(task_id=task_id, **values, updated_at=now))

    async def add_errors(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            await self.session.execute(RE.insert(), rows)

    async def errors(self, task_id: UUID, *, after_id: int, limit: int) -> Sequence[Row[Any]]:
        stmt = (
            select(RE)
            .where(RE.c.task_id == task_id, RE.c.id > after_id)
            .order_by(RE.c.id)
            .limit(limit)
        )
        return (await self.session.execute(stmt)).all()

    async def reset(self, task_id: UUID) -> None:
        await self.session.execute(C.delete().where(C.c.task_id == task_id))
        await self.session.execute(RE.delete().where(RE.c.task_id == task_id))
