"""The worker as one startable unit: runner, heartbeat, poller and (embedded) scheduler."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from service.bootstrap import Resources
from service.domain.events import DOORBELLS, EventType
from service.events.base import OutgoingEvent
from service.events.inprocess import ALL
from worker.handlers import register_all
from worker.poller import Poller
from worker.registry import HandlerRegistry
from worker.runner import Runner
from worker.scheduler import Scheduler

logger = logging.getLogger(__name__)


class WorkerService:
    name = "worker"

    def __init__(self, resources: Resources, registry: HandlerRegistry | None = None) -> None:
        self.resources = resources
        self.registry = registry or register_all(HandlerRegistry())
        self.runner = Runner(resources, self.registry)
        self.poller = Poller(self.runner, resources.settings, healthy=self._doorbells_healthy)
        self.scheduler = (
            Scheduler(resources) if resources.settings.scheduler == "inprocess" else None
        )
        self._tasks: list[asyncio.Task[None]] = []
        self.bus_connected = False

    def _doorbells_healthy(self) -> bool:
        """Doorbells arrive while the in-process bus is shared with an API in this process."""
        return self.bus_connected

    def on_event(self, event: OutgoingEvent) -> None:
        """A doorbell from the bus: claim now, or when its backoff is over."""
        if event.topic not in DOORBELLS:
            return
        available = event.data.get("availableAt") if event.topic == EventType.RETRIED else None
        if available:
            self.runner.wake_at(datetime.fromisoformat(available))
        else:
            self.runner.wake("push")

    async def start(self, *, shares_bus_with_api: bool = False) -> None:
        bus = self.resources.bus
        if bus is not None:
            bus.subscribe(ALL, self.on_event)
            self.bus_connected = shares_bus_with_api
        loops = [self.runner.run(), self.runner.heartbeat_loop(), self.poller.run()]
        if self.scheduler is not None:
            loops.append(self.scheduler.run())
        self._tasks = [asyncio.create_task(loop) for loop in loops]
        self.runner.wake("poll")  # pick up whatever waited while no worker ran
        logger.info(
            "worker started", extra={"action": "worker.started", "worker_id": self.runner.worker_id}
        )

    async def stop(self) -> None:
        for task in self._tasks[1:]:
            task.cancel()
        await self.runner.stop(self.resources.settings.shutdown_grace_seconds)
        self._tasks[0].cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def health(self) -> dict[str, Any]:
        runner = self.runner
        return {
            "workerId": runner.worker_id,
            "running": len(runner.running),
            "capacity": {q.value: n for q, n in runner.capacity.items()},
            "claimed": runner.stats.claimed,
            "claimedBy": runner.stats.by_dispatch,
            "finished": runner.stats.finished,
            "poller": self.poller.health(),
            "scheduler": self.scheduler.health()
            if self.scheduler
            else {"mode": "dapr cron bindings"},
            "handlers": [f"{k.task_type}/{k.entity_type or '*'}" for k in self.registry.registered()],
        }


class WorkerCompanion:
    """Runs a WorkerService beside an app, built once the app's resources exist."""

    name = "worker"

    def __init__(self) -> None:
        self.worker: WorkerService | None = None

    async def start(self, resources: Resources, *, shares_bus_with_api: bool) -> None:
        self.worker = WorkerService(resources)
        await self.worker.start(shares_bus_with_api=shares_bus_with_api)

    async def stop(self) -> None:
        if self.worker is not None:
            await self.worker.stop()

    def health(self) -> dict[str, Any]:
        return self.worker.health() if self.worker else {"status": "starting"}
