"""/queues: each queue's figures, and pausing and resuming a queue (admins only)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter

from service.api.deps import CallerDep, UnitDep
from service.api.json_body import BoundedRoute
from service.clock import utcnow
from service.domain.tasks import Queue
from service.usecases import queues as queue_usecases
from service.web.problems import CALLER_RESPONSES, responses
from service.wire import CamelModel

router = APIRouter(
    prefix="/queues", tags=["queues"], responses=CALLER_RESPONSES, route_class=BoundedRoute
)


class QueuePublic(CamelModel):
    queue: str
    paused: bool
    paused_by: str | None = None
    paused_at: datetime | None = None
    depth: int
    running: int
    oldest_waiting_seconds: float | None = None
    throughput_per_minute: float
    finished_last_5_minutes: int

    @classmethod
    def of(cls, view: queue_usecases.QueueView) -> QueuePublic:
        return cls.model_validate(view, from_attributes=True)


@router.get("", response_model=list[QueuePublic], responses=responses(403))
async def list_queues(uow: UnitDep, caller: CallerDep) -> list[QueuePublic]:
    """Every queue: pending tasks (depth), running ones, how long the oldest due task has
    waited, runs ended in the last five minutes, and whether it is paused. Admins only."""
    views = await queue_usecases.overview(uow, caller, now=utcnow())
    return [QueuePublic.of(v) for v in views]


@router.post("/{queue}/pause", response_model=QueuePublic, responses=responses(403, 404))
async def pause_queue(queue: Queue, uow: UnitDep, caller: CallerDep) -> QueuePublic:
    """Pause a queue: claims skip it (within a second), running tasks finish. Admins only."""
    return QueuePublic.of(await queue_usecases.pause(uow, caller, queue.value, now=utcnow()))


@router.post("/{queue}/resume", response_model=QueuePublic, responses=responses(403, 404))
async def resume_queue(queue: Queue, uow: UnitDep, caller: CallerDep) -> QueuePublic:
    """Resume a paused queue. Admins only."""
    return QueuePublic.of(await queue_usecases.resume(uow, caller, queue.value, now=utcnow()))
