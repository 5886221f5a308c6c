"""Queries on the files table."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.tables import files_table as F


class FileRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert(self, values: dict[str, Any]) -> Row[Any]:
        return (await self.session.execute(F.insert().values(**values).returning(*F.c))).one()

    async def get(self, file_id: UUID) -> Row[Any] | None:
        return (await self.session.execute(select(F).where(F.c.id == file_id))).one_or_none()

    async def get_by_key(self, key: str) -> Row[Any] | None:
        return (await self.session.execute(select(F).where(F.c.key == key))).one_or_none()

    async def latest_for_task(self, task_id: UUID, purpose: str) -> Row[Any] | None:
        stmt = (
            select(F)
            .where(F.c.task_id == task_id, F.c.purpose == purpose)
            .order_by(F.c.created_at.desc(), F.c.id.desc())
            .limit(1)
        )
        return (await self.session.execute(stmt)).one_or_none()

    async def update_where(
        self, file_id: UUID, expected_status: str, values: dict[str, Any]
    ) -> Row[Any] | None:
        """Conditional update: applies only while the file is still in `expected_status`."""
        stmt = (
            update(F)
            .where(F.c.id == file_id, F.c.status == expected_status)
            .values(**values)
            .returning(*F.c)
        )
        return (await self.session.execute(stmt)).one_or_none()

    async def claim_upload(
        self, file_id: UUID, status: str, token: str, *, now: datetime, stale_before: datetime
    ) -> Row[Any] | None:
        """Take the upload of a file in `status` for `token`: only while no other upload holds
        it, or the holder's claim went stale (not refreshed since `stale_before`)."""
        free = or_(F.c.upload_claim.is_(None), F.c.upload_claimed_at < stale_before)
        stmt = (
            update(F)
            .where(F.c.id == file_id, F.c.status == status, free)
            .values(upload_claim=token, upload_claimed_at=now)
            .returning(*F.c)
        )
        return (await self.session.execute(stmt)).one_or_none()

    async def update_claimed(
        self, file_id: UUID, token: str, values: dict[str, Any]
    ) -> Row[Any] | None:
        """Conditional update: applies only while `token` still holds the file's upload."""
        stmt = (
            update(F)
            .where(F.c.id == file_id, F.c.upload_claim == token)
            .values(**values)
            .returning(*F.c)
        )
        return (await self.session.execute(stmt)).one_or_none()

    async def page(
        self, owner: str | None, *, limit: int, offset: int
    ) -> tuple[Sequence[Row[Any]], int]:
        """Newest first; every owner's files when `owner` is None."""
        conditions = [] if owner is None else [F.c.owner == owner]
        count = select(func.count()).select_from(F).where(*conditions)
        total = int((await self.session.execute(count)).scalar_one())
        stmt = (
            select(F)
            .where(*conditions)
            .order_by(F.c.created_at.desc(), F.c.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return (await self.session.execute(stmt)).all(), total

    async def expired(self, now: datetime, limit: int) -> Sequence[Row[Any]]:
        """Files whose expiry has passed, oldest first (for the cleanup-old-files job)."""
        stmt = (
            select(F)
            .where(F.c.expires_at.is_not(None), F.c.expires_at < now)
            .order_by(F.c.expires_at)
            .limit(limit)
        )
        return (await self.session.execute(stmt)).all()

    async def delete_ids(self, ids: Sequence[UUID]) -> int:
        if not ids:
            return 0
        result = await self.session.execute(F.delete().where(F.c.id.in_(ids)))
        return int(result.rowcount)  # type: ignore[attr-defined]
