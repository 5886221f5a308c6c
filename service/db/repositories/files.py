"""Queries on the files table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.tables import files_table as F


@dataclass(frozen=True, slots=True)
class FileRecord:
    """A stored file's record: a task's input upload, output or error report."""

    id: UUID
    key: str
    file_name: str
    content_type: str
    size: int | None
    sha256: str | None
    status: str
    owner: str
    task_id: UUID | None
    purpose: str
    created_at: datetime
    expires_at: datetime | None
    upload_claim: str | None
    upload_claimed_at: datetime | None


def _record(row: Row[Any] | None) -> FileRecord | None:
    return None if row is None else FileRecord(**row._asdict())


class FileRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert(self, values: dict[str, Any]) -> FileRecord:
        row = (await self.session.execute(F.insert().values(**values).returning(*F.c))).one()
        return FileRecord(**row._asdict())

    async def get(self, file_id: UUID) -> FileRecord | None:
        return _record(
            (await self.session.execute(select(F).where(F.c.id == file_id))).one_or_none()
        )

    async def get_by_key(self, key: str) -> FileRecord | None:
        return _record((await self.session.execute(select(F).where(F.c.key == key))).one_or_none())

    async def latest_for_task(self, task_id: UUID, purpose: str) -> FileRecord | None:
        stmt = (
            select(F)
            .where(F.c.task_id == task_id, F.c.purpose == purpose)
            .order_by(F.c.created_at.desc(), F.c.id.desc())
            .limit(1)
        )
        return _record((await self.session.execute(stmt)).one_or_none())

    async def update_where(
        self, file_id: UUID, expected_status: str, values: dict[str, Any]
    ) -> FileRecord | None:
        """Conditional update: applies only while the file is still in `expected_status`."""
        stmt = (
            update(F)
            .where(F.c.id == file_id, F.c.status == expected_status)
            .values(**values)
            .returning(*F.c)
        )
        return _record((await self.session.execute(stmt)).one_or_none())

    async def claim_upload(
        self, file_id: UUID, status: str, token: str, *, now: datetime, stale_before: datetime
    ) -> FileRecord | None:
        """Take the upload of a file in `status` for `token`: only while no other upload holds
        it, or the holder's claim went stale (not refreshed since `stale_before`)."""
        free = or_(F.c.upload_claim.is_(None), F.c.upload_claimed_at < stale_before)
        stmt = (
            update(F)
            .where(F.c.id == file_id, F.c.status == status, free)
            .values(upload_claim=token, upload_claimed_at=now)
            .returning(*F.c)
        )
        return _record((await self.session.execute(stmt)).one_or_none())

    async def update_claimed(
        self, file_id: UUID, token: str, values: dict[str, Any]
    ) -> FileRecord | None:
        """Conditional update: applies only while `token` still holds the file's upload."""
        stmt = (
            update(F)
            .where(F.c.id == file_id, F.c.upload_claim == token)
            .values(**values)
            .returning(*F.c)
        )
        return _record((await self.session.execute(stmt)).one_or_none())

    async def page(
        self, owner: str | None, *, limit: int, offset: int
    ) -> tuple[list[FileRecord], int]:
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
        rows = (await self.session.execute(stmt)).all()
        return [FileRecord(**r._asdict()) for r in rows], total

    async def expired(self, now: datetime, limit: int) -> list[FileRecord]:
        """Files whose expiry has passed, oldest first (for the cleanup-old-files job)."""
        stmt = (
            select(F)
            .where(F.c.expires_at.is_not(None), F.c.expires_at < now)
            .order_by(F.c.expires_at)
            .limit(limit)
        )
        return [FileRecord(**r._asdict()) for r in (await self.session.execute(stmt)).all()]

    async def delete_ids(self, ids: Sequence[UUID]) -> int:
        if not ids:
            return 0
        result = await self.session.execute(F.delete().where(F.c.id.in_(ids)))
        return int(result.rowcount)  # type: ignore[attr-defined]
