"""Every query on templates and their versions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.db import dialects
from service.db.tables import template_versions_table as V, templates_table as T
from service.domain.tasks import Priority
from service.domain.templates import TemplateContent, TemplateRecord


@dataclass(frozen=True, slots=True)
class TemplateFilters:
    """List filters; each is on the template's latest version."""

    category: str | None = None
    task_type: str | None = None
    active: bool | None = None
    tags: Sequence[str] = ()
    search: str | None = None


def _record(row: Row[Any]) -> TemplateRecord:
    r = row._mapping
    content = TemplateContent(
        name=r["name"],
        task_type=r["task_type"],
        description=r["description"],
        category=r["category"],
        entity_type=r["entity_type"],
        params=dict(r["params"]),
        required_fields=tuple(r["required_fields"]),
        optional_fields=tuple(r["optional_fields"]),
        role=r["role"],
        tags=tuple(r["tags"]),
        priority=None if r["priority"] is None else Priority(r["priority"]),
        queue=r["queue"],
        max_retries=r["max_retries"],
        notification_settings=r["notification_settings"],
    )
    return TemplateRecord(
        id=r["id"],
        version=r["version"],
        latest_version=r["latest_version"],
        active=r["active"],
        content=content,
        params_schema=dict(r["params_schema"]),
        created_by=r["template_created_by"],
        created_at=r["template_created_at"],
        version_created_at=r["created_at"],
        updated_at=r["updated_at"],
    )


def _version_row(
    template_id: str,
    version: int,
    content: TemplateContent,
    schema: dict[str, Any],
    *,
    by: str,
    now: datetime,
) -> dict[str, Any]:
    return {
        "template_id": template_id,
        "version": version,
        "name": content.name,
        "description": content.description,
        "category": content.category,
        "task_type": content.task_type,
        "entity_type": content.entity_type,
        "params": content.default_params,
        "required_fields": list(content.required_fields),
        "optional_fields": list(content.optional_fields),
        "params_schema": schema,
        "role": content.role,
        "tags": list(content.tags),
        "priority": None if content.priority is None else int(content.priority),
        "queue": content.queue,
        "max_retries": content.max_retries,
        "notification_settings": (
            None if content.notification_settings is None else dict(content.notification_settings)
        ),
        "created_by": by,
        "created_at": now,
    }


_COLUMNS = [
    T.c.id,
    T.c.latest_version,
    T.c.active,
    T.c.updated_at,
    T.c.created_by.label("template_created_by"),
    T.c.created_at.label("template_created_at"),
    *(c for c in V.c if c.name != "template_id"),
]


def _escaped(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class TemplateRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.dialect = dialects.name(session)

    async def insert(
        self,
        template_id: str,
        content: TemplateContent,
        schema: dict[str, Any],
        *,
        by: str,
        now: datetime,
        if_absent: bool = False,
    ) -> bool:
        """A new template at version 1; with `if_absent`, an existing id is left alone (False)."""
        row = {
            "id": template_id,
            "latest_version": 1,
            "active": True,
            "created_by": by,
            "created_at": now,
            "updated_at": now,
            "deactivated_at": None,
        }
        if if_absent:
            stmt = dialects.insert_ignoring_conflicts(T, self.dialect).values(row)
            result = await self.session.execute(stmt)
            if not result.rowcount:  # type: ignore[attr-defined]
                return False
        else:
            await self.session.execute(T.insert().values(row))
        await self.session.execute(
            V.insert().values(_version_row(template_id, 1, content, schema, by=by, now=now))
        )
        return True

    async def add_version(
        self,
        template_id: str,
        expected: int,
        content: TemplateContent,
        schema: dict[str, Any],
        *,
        by: str,
        now: datetime,
    ) -> int | None:
        """Version expected+1 of an active template whose latest is still `expected`; None when
        another update came first (or it was deactivated meanwhile)."""
        stmt = (
            update(T)
            .where(T.c.id == template_id, T.c.latest_version == expected, T.c.active.is_(True))
            .values(latest_version=expected + 1, updated_at=now)
        )
        if not (await self.session.execute(stmt)).rowcount:  # type: ignore[attr-defined]
            return None
        version = expected + 1
        row = _version_row(template_id, version, content, schema, by=by, now=now)
        await self.session.execute(V.insert().values(row))
        return version

    async def get(self, template_id: str, version: int | None = None) -> TemplateRecord | None:
        """One version (the latest when None) with its template's state."""
        wanted = T.c.latest_version if version is None else version
        stmt = (
            select(*_COLUMNS)
            .select_from(T.join(V, V.c.template_id == T.c.id))
            .where(T.c.id == template_id, V.c.version == wanted)
        )
        row = (await self.session.execute(stmt)).one_or_none()
        return None if row is None else _record(row)

    async def versions(self, template_id: str) -> list[TemplateRecord]:
        """Every version, oldest first."""
        stmt = (
            select(*_COLUMNS)
            .select_from(T.join(V, V.c.template_id == T.c.id))
            .where(T.c.id == template_id)
            .order_by(V.c.version)
        )
        return [_record(r) for r in (await self.session.execute(stmt)).all()]

    async def deactivate(self, template_id: str, *, now: datetime) -> bool:
        """Mark it inactive; False when there is no such template."""
        stmt = (
            update(T)
            .where(T.c.id == template_id)
            .values(
                active=False,
                updated_at=now,
                deactivated_at=func.coalesce(T.c.deactivated_at, now),
            )
        )
        return bool((await self.session.execute(stmt)).rowcount)  # type: ignore[attr-defined]

    async def page(
        self, filters: TemplateFilters, *, limit: int, offset: int
    ) -> tuple[list[TemplateRecord], int]:
        """Latest versions matching the filters, by name then id, and their total."""
        joined = T.join(V, and_(V.c.template_id == T.c.id, V.c.version == T.c.latest_version))
        conditions = self._conditions(filters)
        total = (
            await self.session.execute(select(func.count()).select_from(joined).where(*conditions))
        ).scalar_one()
        stmt = (
            select(*_COLUMNS)
            .select_from(joined)
            .where(*conditions)
            .order_by(V.c.name, T.c.id)
            .limit(limit)
            .offset(offset)
        )
        rows = (await self.session.execute(stmt)).all()
        return [_record(r) for r in rows], int(total)

    def _conditions(self, f: TemplateFilters) -> list[Any]:
        conditions: list[Any] = []
        if f.category is not None:
            conditions.append(V.c.category == f.category)
        if f.task_type is not None:
            conditions.append(V.c.task_type == f.task_type)
        if f.active is not None:
            conditions.append(T.c.active.is_(f.active))
        if f.tags:
            conditions.append(dialects.json_list_holds_all(V.c.tags, f.tags, self.dialect))
        if f.search:
            pattern = _escaped(f.search)
            conditions.append(
                or_(
                    V.c.name.ilike(pattern, escape="\\"),
                    V.c.description.ilike(pattern, escape="\\"),
                    V.c.category.ilike(pattern, escape="\\"),
                    V.c.task_type.ilike(pattern, escape="\\"),
                )
            )
        return conditions
