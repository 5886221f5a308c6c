"""Whole task lifecycles in the embedded mode: every transition leaves one event row and one
outbox row (same transaction), and the relay delivers each outbox row once, in order per task."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import timedelta
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import func, select

from service.bootstrap import Resources
from service.clock import utcnow
from service.db.engine import session_scope
from service.db.tables import events_table, outbox_table
from service.domain.events import EventType
from service.events.base import OutgoingEvent
from tests.fixtures.app import user, wait_until
from tests.integration.worker.support import rows

BASE = "/api/v1/operations/tasks"
PROGRESS = EventType.PROGRESS.value


class Lifecycle:
    """Drives tasks through the API and waits for the statuses their watchers see."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def create(self, **body: Any) -> UUID:
        response = await self.client.post(BASE, json=body, headers=user())
        assert response.status_code == 201, response.text
        return UUID(response.json()["id"])

    async def post(self, task_id: UUID, action: str) -> dict[str, Any]:
        response = await self.client.post(f"{BASE}/{task_id}/{action}", headers=user())
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def reaches(self, task_id: UUID, status: str, *, attempts: int | None = None) -> None:
        async def reached() -> bool:
            body = (await self.client.get(f"{BASE}/{task_id}", headers=user())).json()
            return bool(
                body["status"] == status and (attempts is None or body["attempts"] == attempts)
            )

        await wait_until(reached, timeout=15)


async def unpublished(resources: Resources) -> int:
    async with session_scope(resources.sessionmaker) as session:
        stmt = select(func.count()).select_from(outbox_table)
        stmt = stmt.where(outbox_table.c.published_at.is_(None))
        return int((await session.execute(stmt)).scalar_one())


def short(event_type: str) -> str:
    return event_type.rsplit(".", 1)[1]


class TestOutboxThroughTheLifecycle:
    async def test_each_transition_has_one_event_and_one_outbox_row_delivered_once_in_order(
        self, embedded: httpx.AsyncClient
    ) -> None:
        resources: Resources = embedded.app.state.resources  # type: ignore[attr-defined]
        bus = resources.bus
        assert bus is not None
        delivered: list[OutgoingEvent] = []
        bus.subscribe("*", delivered.append)
        try:
            ids = await self._drive(Lifecycle(embedded))

            async def all_published() -> bool:
                return await unpublished(resources) == 0

            await wait_until(all_published)
        finally:
            bus.unsubscribe("*", delivered.append)

        expected = {
            "completes": ["created", "started", "completed"],
            "gives_up": [
                *("created", "started", "retried", "started", "failed"),
                *("retried", "started", "retried", "started", "failed"),  # a retry by hand
            ],
            "parked": ["scheduled", "cancelled", "retried", "started", "completed"],
            "stopped": ["created", "started", "cancel_requested", "cancelled"],
            "due": ["scheduled", "created", "started", "completed"],
        }
        outbox = await rows(resources, outbox_table)
        assert {row.task_id for row in outbox} == {ids[name] for name in expected}
        assert all(row.published_at is not None for row in outbox)

        for name, transitions in expected.items():
            task_id = ids[name]
            events = await rows(resources, events_table, task_id=task_id)
            assert [short(e.event_type) for e in events] == transitions, name
            # Progress notices are throttled announcements, not transitions: outbox only.
            changes = [r for r in outbox if r.task_id == task_id and r.topic != PROGRESS]
            assert [(r.topic, r.created_at) for r in changes] == [
                (e.event_type, e.created_at) for e in events
            ], name
            assert changes[-1].payload["status"] == events[-1].to_status
        assert any(r.topic == PROGRESS for r in outbox if r.task_id == ids["stopped"])

        # The bus saw every outbox row exactly once, under the outbox id, in order per task.
        assert Counter(e.id for e in delivered) == Counter(str(r.id) for r in outbox)
        order: defaultdict[str | None, list[str]] = defaultdict(list)
        for event in delivered:
            order[event.subject].append(event.id)
        for row in outbox:
            assert next(e for e in delivered if e.id == str(row.id)).topic == row.topic
        for subject, event_ids in order.items():
            expected_ids = [str(r.id) for r in outbox if str(r.task_id) == subject]
            assert event_ids == expected_ids, subject

    @staticmethod
    async def _drive(life: Lifecycle) -> dict[str, UUID]:
        later = (utcnow() + timedelta(hours=1)).isoformat()
        # created first, with room to spare: a loaded machine must not pass its time first
        due = await life.create(
            taskType="noop", scheduledAt=(utcnow() + timedelta(seconds=3)).isoformat()
        )
        ids = {
            "completes": await life.create(taskType="noop"),
            "gives_up": await life.create(taskType="fail", maxRetries=1),
            "parked": await life.create(taskType="noop", scheduledAt=later),
            "stopped": await life.create(taskType="sleep", params={"seconds": 30}),
            "due": due,
        }
        await life.reaches(ids["parked"], "scheduled")
        await life.post(ids["parked"], "cancel")
        await life.reaches(ids["parked"], "cancelled")
        await life.post(ids["parked"], "retry")

        await life.reaches(ids["stopped"], "processing")
        await life.post(ids["stopped"], "cancel")

        await life.reaches(ids["gives_up"], "failed")
        await life.post(ids["gives_up"], "retry")

        await life.reaches(ids["completes"], "completed")
        await life.reaches(ids["parked"], "completed")
        await life.reaches(ids["stopped"], "cancelled")
        await life.reaches(ids["gives_up"], "failed", attempts=4)
        await life.reaches(ids["due"], "completed")
        return ids
