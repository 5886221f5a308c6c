"""Queries on notifications: the inbox, webhook deliveries and their attempts, signing secrets,
and the progress milestones already told."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.db import dialects
from service.db.tables import (
    deliveries_table as D,
    marks_table as K,
    messages_table as M,
    webhook_attempts_table as WA,
    webhook_secrets_table as S,
)


@dataclass(frozen=True, slots=True)
class MessageRecord:
    id: UUID
    recipient: str
    task_id: UUID | None
    kind: str
    title: str
    body: str
    data: dict[str, Any] | None
    created_at: datetime
    read_at: datetime | None


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    id: UUID
    task_id: UUID | None
    owner: str
    url: str
    reason: str
    payload: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class WebhookAttemptRecord:
    delivery_id: UUID
    attempt: int
    started_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


def _message(row: Row[Any]) -> MessageRecord:
    return MessageRecord(
        row.id,
        row.recipient,
        row.task_id,
        row.kind,
        row.title,
        row.body,
        row.data,
        row.created_at,
        row.read_at,
    )


def _delivery(row: Row[Any]) -> DeliveryRecord:
    return DeliveryRecord(
        row.id,
        row.task_id,
        row.owner,
        row.url,
        row.reason,
        row.payload,
        row.status,
        row.attempts,
        row.next_attempt_at,
        row.last_status_code,
        row.last_error,
        row.created_at,
        row.updated_at,
        row.delivered_at,
    )


class MessageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, rows: Sequence[dict[str, Any]]) -> None:
        """Many messages in one multi-row statement."""
        if rows:
            await self.session.execute(insert(M), list(rows))

    async def page(
        self, recipient: str, *, unread: bool, limit: int, offset: int
    ) -> tuple[list[MessageRecord], int, int]:
        """One page newest first, the total matching, and the recipient's unread count."""
        mine = [M.c.recipient == recipient]
        if unread:
            mine.append(M.c.read_at.is_(None))
        total = (await self.session.execute(select(func.count()).where(*mine))).scalar_one()
        unread_count = (
            await self.session.execute(
                select(func.count()).where(M.c.recipient == recipient, M.c.read_at.is_(None))
            )
        ).scalar_one()
        stmt = (
            select(M)
            .where(*mine)
            .order_by(M.c.created_at.desc(), M.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        rows = (await self.session.execute(stmt)).all()
        return [_message(r) for r in rows], total, unread_count

    async def unread(self, recipient: str) -> int:
        """The recipient's unread count: one COUNT on the inbox index (recipient first)."""
        stmt = select(func.count()).where(M.c.recipient == recipient, M.c.read_at.is_(None))
        return int((await self.session.execute(stmt)).scalar_one())

    async def mark_read(
        self, recipient: str, message_id: UUID, now: datetime
    ) -> MessageRecord | None:
        """Mark one of the recipient's messages read (kept as first read); None: not theirs."""
        await self.session.execute(
            update(M)
            .where(M.c.id == message_id, M.c.recipient == recipient, M.c.read_at.is_(None))
            .values(read_at=now)
        )
        row = (
            await self.session.execute(
                select(M).where(M.c.id == message_id, M.c.recipient == recipient)
            )
        ).one_or_none()
        return None if row is None else _message(row)

    async def mark_all_read(self, recipient: str, now: datetime) -> int:
        result = await self.session.execute(
            update(M).where(M.c.recipient == recipient, M.c.read_at.is_(None)).values(read_at=now)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def delete_before(self, before: datetime) -> None:
        """Retention: messages older than `before`, read or not."""
        await self.session.execute(delete(M).where(M.c.created_at < before))

    async def for_task(self, task_id: UUID) -> list[MessageRecord]:
        rows = await self.session.execute(
            select(M).where(M.c.task_id == task_id).order_by(M.c.created_at, M.c.id)
        )
        return [_message(r) for r in rows.all()]


class DeliveryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, rows: Sequence[dict[str, Any]]) -> None:
        """Many deliveries in one multi-row statement."""
        if rows:
            await self.session.execute(insert(D), list(rows))

    async def due_ids(self, now: datetime, limit: int) -> list[UUID]:
        """Pending deliveries due now that no worker holds."""
        stmt = (
            select(D.c.id)
            .where(
                dialects.is_value(D.c.status, "pending"),
                D.c.next_attempt_at <= now,
                or_(D.c.lease_until.is_(None), D.c.lease_until < now),
            )
            .order_by(D.c.next_attempt_at)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def take(
        self, delivery_id: UUID, now: datetime, until: datetime
    ) -> DeliveryRecord | None:
        """Hold a due delivery until `until` (a conditional update: one worker wins)."""
        stmt = (
            update(D)
            .where(
                D.c.id == delivery_id,
                dialects.is_value(D.c.status, "pending"),
                D.c.next_attempt_at <= now,
                or_(D.c.lease_until.is_(None), D.c.lease_until < now),
            )
            .values(lease_until=until)
            .returning(*D.c)
        )
        row = (await self.session.execute(stmt)).one_or_none()
        return None if row is None else _delivery(row)

    async def settle(
        self,
        delivery: DeliveryRecord,
        attempt: dict[str, Any],
        *,
        status: str,
        next_attempt_at: datetime,
        now: datetime,
    ) -> None:
        """Record an attempt and what the delivery became (pending again, delivered, failed)."""
        await self.session.execute(insert(WA), [{"delivery_id": delivery.id, **attempt}])
        await self.session.execute(
            update(D)
            .where(D.c.id == delivery.id, D.c.attempts == delivery.attempts)
            .values(
                status=status,
                attempts=delivery.attempts + 1,
                next_attempt_at=next_attempt_at,
                lease_until=None,
                last_status_code=attempt["status_code"],
                last_error=attempt["error"],
                updated_at=now,
                delivered_at=now if status == "delivered" else None,
            )
        )

    async def for_task(self, task_id: UUID) -> list[DeliveryRecord]:
        rows = await self.session.execute(
            select(D).where(D.c.task_id == task_id).order_by(D.c.created_at, D.c.id)
        )
        return [_delivery(r) for r in rows.all()]

    async def attempts_of(self, delivery_ids: Sequence[UUID]) -> list[WebhookAttemptRecord]:
        if not delivery_ids:
            return []
        rows = await self.session.execute(
            select(WA)
            .where(WA.c.delivery_id.in_(list(delivery_ids)))
            .order_by(WA.c.delivery_id, WA.c.attempt)
        )
        return [
            WebhookAttemptRecord(
                r.delivery_id, r.attempt, r.started_at, r.status_code, r.error, r.duration_ms
            )
            for r in rows.all()
        ]

    async def delete_for_tasks(self, task_ids: Sequence[UUID]) -> None:
        """Retention: deliveries, their attempts and milestones of deleted tasks."""
        if not task_ids:
            return
        ids = list(task_ids)
        owned = select(D.c.id).where(D.c.task_id.in_(ids)).scalar_subquery()
        await self.session.execute(delete(WA).where(WA.c.delivery_id.in_(owned)))
        await self.session.execute(delete(D).where(D.c.task_id.in_(ids)))
        await self.session.execute(delete(K).where(K.c.task_id.in_(ids)))


class SecretRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, owner: str) -> str | None:
        found = await self.session.execute(select(S.c.secret).where(S.c.owner == owner))
        return found.scalar_one_or_none()

    async def put(self, owner: str, secret: str, now: datetime) -> None:
        """Set (or replace) the owner's secret."""
        await self.session.execute(delete(S).where(S.c.owner == owner))
        await self.session.execute(
            insert(S), [{"owner": owner, "secret": secret, "created_at": now}]
        )


class MarkRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def told(self, task_id: UUID) -> set[str]:
        rows = await self.session.execute(select(K.c.mark).where(K.c.task_id == task_id))
        return set(rows.scalars())

    async def add(self, task_id: UUID, marks: Sequence[str], now: datetime) -> None:
        if marks:
            await self.session.execute(
                insert(K), [{"task_id": task_id, "mark": m, "created_at": now} for m in marks]
            )


__all__ = [
    "DeliveryRecord",
    "DeliveryRepository",
    "MarkRepository",
    "MessageRecord",
    "MessageRepository",
    "SecretRepository",
    "WebhookAttemptRecord",
]
