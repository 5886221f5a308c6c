"""Queries on dead letters and their replays."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.db import dialects
from service.db.tables import dead_letter_replays_table as R, dead_letters_table as D


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    """An event the broker gave up delivering, as it landed, and its last replay if any."""

    id: int
    event_id: str
    event_type: str | None
    topic: str | None
    task_id: UUID | None
    payload: dict[str, Any]
    received_at: datetime
    replayed_at: datetime | None = None
    replayed_by: str | None = None


@dataclass(frozen=True, slots=True)
class DeadLetterFilters:
    """Every field given must match (received_from inclusive, received_to exclusive)."""

    topic: str | None = None
    event_type: str | None = None
    task_id: UUID | None = None
    received_from: datetime | None = None
    received_to: datetime | None = None
    #: True: only those replayed already; False: only those never replayed
    replayed: bool | None = None

    def where(self) -> list[ColumnElement[bool]]:
        clauses: list[ColumnElement[bool]] = []
        if self.topic is not None:
            clauses.append(D.c.topic == self.topic)
        if self.event_type is not None:
            clauses.append(D.c.event_type == self.event_type)
        if self.task_id is not None:
            clauses.append(D.c.task_id == self.task_id)
        if self.received_from is not None:
            clauses.append(D.c.received_at >= self.received_from)
        if self.received_to is not None:
            clauses.append(D.c.received_at < self.received_to)
        if self.replayed is not None:
            replayed = D.c.replayed_at.is_not(None)
            clauses.append(replayed if self.replayed else D.c.replayed_at.is_(None))
        return clauses


class DeadLetterRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, values: dict[str, Any]) -> bool:
        """Record one; False when that event id was already recorded (redelivery)."""
        stmt = dialects.insert_ignoring_conflicts(D, dialects.name(self.session)).values(**values)
        result = await self.session.execute(stmt.returning(D.c.id))
        return result.scalar_one_or_none() is not None

    async def latest(
        self, limit: int, offset: int, filters: DeadLetterFilters | None = None
    ) -> list[DeadLetterRecord]:
        where = (filters or DeadLetterFilters()).where()
        stmt = select(D).where(*where).order_by(D.c.id.desc()).offset(offset).limit(limit)
        return [DeadLetterRecord(**r._asdict()) for r in (await self.session.execute(stmt)).all()]

    async def count(self, filters: DeadLetterFilters) -> int:
        stmt = select(func.count()).select_from(D).where(*filters.where())
        return int((await self.session.execute(stmt)).scalar_one())

    async def matching(self, filters: DeadLetterFilters, limit: int) -> list[DeadLetterRecord]:
        """Up to `limit` of those the filter matches, oldest first (the order they are replayed)."""
        stmt = select(D).where(*filters.where()).order_by(D.c.id).limit(limit)
        return [DeadLetterRecord(**r._asdict()) for r in (await self.session.execute(stmt)).all()]

    async def get(self, dead_letter_id: int) -> DeadLetterRecord | None:
        row = (await self.session.execute(select(D).where(D.c.id == dead_letter_id))).first()
        return None if row is None else DeadLetterRecord(**row._asdict())

    async def mark_replayed(self, ids: Sequence[int], actor: str, now: datetime) -> None:
        if ids:
            await self.session.execute(
                update(D).where(D.c.id.in_(list(ids))).values(replayed_at=now, replayed_by=actor)
            )

    async def audit(self, replays: Sequence[tuple[int, int]], actor: str, now: datetime) -> None:
        """One audit row per (dead letter id, outbox id) replayed."""
        if replays:
            await self.session.execute(
                R.insert(),
                [
                    {"dead_letter_id": d, "outbox_id": o, "actor": actor, "created_at": now}
                    for d, o in replays
                ],
            )

    async def replays_of(self, dead_letter_id: int) -> list[tuple[str, int, datetime]]:
        """Its audit trail, newest first: (actor, outbox id, when)."""
        stmt = (
            select(R.c.actor, R.c.outbox_id, R.c.created_at)
            .where(R.c.dead_letter_id == dead_letter_id)
            .order_by(R.c.id.desc())
        )
        return [(r.actor, r.outbox_id, r.created_at) for r in await self.session.execute(stmt)]
