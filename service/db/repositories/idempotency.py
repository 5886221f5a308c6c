"""Idempotency-Key records: one per caller, operation and key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db import dialects
from service.db.tables import idempotency_keys_table as K


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """A key as first used: the request's fingerprint and the task it made."""

    owner: str
    operation: str
    key: str
    fingerprint: str
    task_id: UUID
    created_at: datetime


class IdempotencyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def find(self, owner: str, operation: str, key: str) -> IdempotencyRecord | None:
        stmt = select(K).where(K.c.owner == owner, K.c.operation == operation, K.c.key == key)
        row = (await self.session.execute(stmt)).one_or_none()
        return None if row is None else IdempotencyRecord(**row._asdict())

    async def claim(self, record: IdempotencyRecord) -> bool:
        """Record the key unless it exists; False when it does (a concurrent request with the
        same key waits here until the first one's transaction ends, then finds it)."""
        stmt = (
            dialects.insert_ignoring_conflicts(K, dialects.name(self.session))
            .values(
                owner=record.owner,
                operation=record.operation,
                key=record.key,
                fingerprint=record.fingerprint,
                task_id=record.task_id,
                created_at=record.created_at,
            )
            .returning(K.c.task_id)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none() is not None

    async def delete_before(self, before: datetime) -> None:
        await self.session.execute(K.delete().where(K.c.created_at < before))
