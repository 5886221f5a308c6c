"""Outbox relay: publishes outbox rows in id order, marking each published only once accepted."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from service.clock import utcnow
from service.db import dialects
from service.db.engine import SessionMaker, session_scope
from service.db.repositories.outbox import OutboxRepository
from service.events.base import OutgoingEvent, Publisher, PublishError

logger = logging.getLogger(__name__)

RELAY_LOCK = 0x0C0F_0B0E  # advisory lock key: one draining relay at a time keeps per-task order


def to_event(row: Any) -> OutgoingEvent:
    return OutgoingEvent(
        id=str(row.id),
        topic=row.topic,
        subject=str(row.task_id) if row.task_id else None,
        data=row.payload,
        time=row.created_at,
        traceparent=row.traceparent,
    )


class OutboxRelay:
    """Drains right after a commit (kick) and on a slow sweep; stops at the first failure."""

    def __init__(
        self,
        sessionmaker: SessionMaker,
        publisher: Publisher,
        *,
        batch_size: int = 500,
        sweep_seconds: float = 5.0,
        max_backoff: float = 30.0,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.publisher = publisher
        self.batch_size = batch_size
        self.sweep_seconds = sweep_seconds
        self.max_backoff = max_backoff
        self.failures = 0
        self.published = 0
        self.last_error: str | None = None
        self._kick = asyncio.Event()
        self._contended = False

    def kick(self) -> None:
        self._kick.set()

    async def run(self) -> None:
        """Drain forever: on each kick, on each sweep, and with backoff while publishing fails."""
        while True:
            timeout = (
                0.05
                if self._contended
                else (
                    self.sweep_seconds
                    if not self.failures
                    else min(self.max_backoff, 0.5 * 2**self.failures)
                )
            )
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel that
            # arrives just after a kick, and the app's shutdown then waits for ever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._kick.wait()
            self._kick.clear()
            try:
                await self.drain()
            except Exception as error:  # the database may be away for a while: keep trying
                self.failures += 1
                self.last_error = str(error)
                logger.warning(
                    "outbox drain failed",
                    extra={"action": "outbox.drain_failed", "error": str(error)},
                )

    async def _publish(self, rows: Sequence[Any]) -> tuple[list[int], str | None]:
        """Publish rows, each task's in id order; tasks in parallel up to the publisher's limit.

        Returns the ids accepted and the first error. A task whose event failed publishes
        nothing after it, so its events never overtake one another.
        """
        by_task: dict[Any, list[Any]] = defaultdict(list)
        for row in rows:
            by_task[row.task_id].append(row)
        done: list[int] = []
        errors: list[str] = []
        limit = asyncio.Semaphore(self.publisher.max_in_flight)

        async def publish_in_order(group: list[Any]) -> None:
            async with limit:
                for row in group:
                    if errors and self.publisher.max_in_flight == 1:
                        return
                    try:
                        await self.publisher.publish(to_event(row))
                    except PublishError as error:
                        errors.append(str(error))
                        return
                    done.append(row.id)

        if self.publisher.max_in_flight == 1:
            for group in by_task.values():
                await publish_in_order(group)
                if errors:
                    break
        else:
            await asyncio.gather(*(publish_in_order(g) for g in by_task.values()))
        return done, errors[0] if errors else None

    async def drain(self) -> int:
        """Publish every unpublished row now; returns how many went out."""
        sent = 0
        self._contended = False
        while True:
            async with session_scope(self.sessionmaker) as session:
                if not await dialects.try_exclusive(session, RELAY_LOCK):
                    # Another relay is draining (it keeps the order) but may have read its
                    # batch before our rows committed: look again shortly.
                    self._contended = True
                    return sent
                repo = OutboxRepository(session)
                rows = await repo.next_batch(self.batch_size)
                if not rows:
                    self.failures = 0
                    return sent
                done, error = await self._publish(rows)
                if error is not None:
                    self.failures += 1
                    self.last_error = error
                    failed = [r.id for r in rows if r.id not in set(done)][:1]
                    await repo.mark_published(done, utcnow())
                    for row_id in failed:
                        await repo.mark_failed(row_id, error)
                    logger.warning(
                        "publish failed",
                        extra={
                            "action": "outbox.publish_failed",
                            "outbox_id": failed,
                            "error": error,
                        },
                    )
                    self.published += len(done)
                    return sent + len(done)
                await repo.mark_published(done, utcnow())
                self.failures = 0
                self.published += len(done)
                sent += len(done)
            if len(rows) < self.batch_size:
                return sent
