"""Queues: their figures for the dashboard, and pausing and resuming them (admins only).

A paused queue keeps its tasks pending: workers' claims skip it (they read the paused set at
most once a second, see `PausedQueues`), runs already started finish.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from service.db.repositories.outbox import NewOutboxRow
from service.db.repositories.queues import QueueRepository
from service.db.unit_of_work import UnitOfWork
from service.domain.callers import ADMIN_ROLE, Caller
from service.domain.errors import Forbidden, NotFound
from service.domain.events import QueueEventType
from service.domain.tasks import Queue
from service.usecases import history

PAUSED_TOPIC = QueueEventType.PAUSED
RESUMED_TOPIC = QueueEventType.RESUMED
#: throughput is counted over this window
THROUGHPUT_WINDOW = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class QueueView:
    queue: str
    paused: bool
    paused_by: str | None
    paused_at: datetime | None
    depth: int
    running: int
    #: seconds the oldest due pending task has waited (None: none waits)
    oldest_waiting_seconds: float | None
    #: runs that ended (completed or failed) in the last five minutes, per minute
    throughput_per_minute: float
    finished_last_5_minutes: int


def _known(queue: str) -> str:
    if queue not in Queue.__members__.values():
        allowed = ", ".join(q.value for q in Queue)
        raise NotFound(f"queue {queue!r} does not exist; queues: {allowed}", queue=queue)
    return queue


def _admin(caller: Caller) -> None:
    if not caller.has_role(ADMIN_ROLE):
        raise Forbidden("only admins pause and resume queues")


async def overview(uow: UnitOfWork, caller: Caller, *, now: datetime) -> list[QueueView]:
    """Every queue with its figures (over every user's tasks: admins only see them)."""
    _admin(caller)
    repo = QueueRepository(uow.session)
    figures = await repo.figures(now=now, since=now - THROUGHPUT_WINDOW)
    pauses = {p.queue: p for p in await repo.pauses()}
    views = []
    for queue in Queue:
        f = figures.get(queue.value)
        pause = pauses.get(queue.value)
        oldest = None if f is None or f.oldest_due_at is None else f.oldest_due_at
        finished = 0 if f is None else f.finished
        views.append(
            QueueView(
                queue=queue.value,
                paused=pause is not None,
                paused_by=None if pause is None else pause.paused_by,
                paused_at=None if pause is None else pause.paused_at,
                depth=0 if f is None else f.depth,
                running=0 if f is None else f.running,
                oldest_waiting_seconds=(
                    None if oldest is None else max(0.0, (now - oldest).total_seconds())
                ),
                throughput_per_minute=round(finished / 5, 2),
                finished_last_5_minutes=finished,
            )
        )
    return views


async def pause(uow: UnitOfWork, caller: Caller, queue: str, *, now: datetime) -> QueueView:
    """Pause a queue: an audit row and an operations.queue.paused event (once: pausing a
    paused queue changes nothing)."""
    _admin(caller)
    repo = QueueRepository(uow.session)
    if await repo.pause(_known(queue), caller.user_id, now):
        await _trail(uow, repo, queue, "paused", PAUSED_TOPIC, caller, now)
    return await _one(uow, caller, queue, now)


async def resume(uow: UnitOfWork, caller: Caller, queue: str, *, now: datetime) -> QueueView:
    """Resume a paused queue: an audit row and an operations.queue.resumed event."""
    _admin(caller)
    repo = QueueRepository(uow.session)
    if await repo.resume(_known(queue)):
        await _trail(uow, repo, queue, "resumed", RESUMED_TOPIC, caller, now)
    return await _one(uow, caller, queue, now)


async def _trail(
    uow: UnitOfWork,
    repo: QueueRepository,
    queue: str,
    action: str,
    topic: str,
    caller: Caller,
    now: datetime,
) -> None:
    await repo.audit(queue, action, caller.user_id, now)
    payload = {"queue": queue, "action": action, "actor": caller.user_id, "at": now.isoformat()}
    await history.publish(uow, [NewOutboxRow(topic, None, payload, now)])


async def _one(uow: UnitOfWork, caller: Caller, queue: str, now: datetime) -> QueueView:
    return next(v for v in await overview(uow, caller, now=now) if v.queue == queue)


async def paused(uow: UnitOfWork) -> frozenset[str]:
    """The paused queues (the worker's claim skips them)."""
    return await QueueRepository(uow.session).paused()


class PausedQueues:
    """A worker's view of the paused set, read at most once per `every` seconds: the claim
    path is hot, and a pause may take a second to reach every worker."""

    def __init__(self, every: float = 1.0) -> None:
        self.every = every
        self.value: frozenset[str] = frozenset()
        self._read_at = float("-inf")

    async def get(self, uow: UnitOfWork) -> frozenset[str]:
        moment = time.monotonic()
        if moment - self._read_at >= self.every:
            self.value = await paused(uow)
            self._read_at = moment
        return self.value
