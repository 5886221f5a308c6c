"""Queries on stored settings: the current version of a key, its history, a new version."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.tables import setting_versions_table as V
from service.domain.settings import SettingVersion


class VersionTaken(Exception):
    """Another save wrote this version of the key first."""


def _record(row: Row[Any]) -> SettingVersion:
    return SettingVersion(
        key=row.key,
        version=row.version,
        document=row.document,
        changed_at=row.changed_at,
        changed_by=row.changed_by,
        changes=tuple(row.changes),
    )


class SettingsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def current(self, key: str) -> SettingVersion | None:
        """The latest saved version of `key`, None before the first save."""
        stmt = select(V).where(V.c.key == key).order_by(V.c.version.desc()).limit(1)
        row = (await self.session.execute(stmt)).first()
        return None if row is None else _record(row)

    async def add(self, version: SettingVersion) -> None:
        """Insert a new version; VersionTaken when a concurrent save wrote that number first."""
        values = {
            "key": version.key,
            "version": version.version,
            "document": version.document,
            "changes": list(version.changes),
            "changed_by": version.changed_by,
            "changed_at": version.changed_at,
        }
        try:
            await self.session.execute(V.insert().values(values))
        except IntegrityError as error:
            raise VersionTaken(f"{version.key} version {version.version}") from error

    async def history(self, key: str, *, limit: int, offset: int) -> list[SettingVersion]:
        """Saved versions of `key`, newest first."""
        stmt = (
            select(V).where(V.c.key == key).order_by(V.c.version.desc()).limit(limit).offset(offset)
        )
        return [_record(r) for r in (await self.session.execute(stmt)).all()]

    async def count(self, key: str) -> int:
        stmt = select(func.count()).select_from(V).where(V.c.key == key)
        return int((await self.session.execute(stmt)).scalar_one())
