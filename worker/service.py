"""The worker as one startable unit: runner, heartbeat, poller, job trigger and scheduler."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from service.bootstrap import Resources
from service.domain.events import DOORBELLS, EventType
from service.events.base import OutgoingEvent
from service.events.inprocess import ALL
from service.logging import FailureStreak
from service.telemetry import metrics
from worker.doorbells import DoorbellHealth
from worker.handlers import register_all
from worker.jobs.ticks import JobTrigger
from worker.poller import Poller
from worker.registry import HandlerRegistry
from worker.runner import Runner
from worker.scheduler import Scheduler
from worker.webhooks import WebhookDeliverer

logger = logging.getLogger(__name__)


async def keep_running(name: str, loop: Callable[[], Awaitable[None]]) -> None:
    """Run a background loop for good: should it crash, log that and start it again.

    Each loop handles the failures it expects (the database away, the sidecar down); this is
    for the ones nobody expected, which would otherwise end the loop without a word while
    the worker went on looking healthy.
    """
    crashes = FailureStreak(logger, f"worker loop {name}", "worker.loop")
    while True:
        try:
            await loop()
            return
        except Exception as error:
            crashes.failed(error)
            await asyncio.sleep(crashes.backoff(0.5, 10.0))


class WorkerService:
    name = "worker"

    def __init__(
        self,
        resources: Resources,
        registry: HandlerRegistry | None = None,
        *,
        shares_bus: bool = False,
    ) -> None:
        self.resources = resources
        self.registry = registry or register_all(HandlerRegistry(resources.catalog))
        self.runner = Runner(resources, self.registry)
        self.shares_bus = shares_bus
        expected = resources.publisher.crosses_processes or shares_bus
        self.doorbells = DoorbellHealth(resources.publisher, resources.relay, expected=expected)
        self.runner.on_poll_claim = self.doorbells.poll_found
        self.poller = Poller(self.runner, resources.settings, healthy=self.doorbells.healthy)
        self.jobs = JobTrigger(resources)
        inprocess_cron = resources.settings.scheduler == "inprocess"
        self.scheduler = Scheduler(resources, self.jobs) if inprocess_cron else None
        self.webhooks = WebhookDeliverer(resources)
        self.deliveries: Counter[str] = Counter()
        self.recent: deque[dict[str, Any]] = deque(maxlen=50)
        self._tasks: list[asyncio.Task[None]] = []
        #: tasks rung directly by the API in this process; their `created` doorbell is redundant
        self._rung_directly: set[str] = set()

    @property
    def stopping(self) -> bool:
        return self.runner.stopping

    def ring(self, available_at: str | None = None) -> None:
        """A doorbell: claim now, or when the task's backoff is over."""
        if available_at:
            self.runner.wake_at(datetime.fromisoformat(available_at))
        else:
            self.runner.wake("push")

    def ring_new(self, task_ids: list[UUID]) -> None:
        """The API in this process committed new pending tasks: claim now.

        The relay still publishes their `created` events; on_event then skips that second
        doorbell, which would only cost an empty claim transaction.
        """
        if len(self._rung_directly) > 10_000:  # events that never came (e.g. a stopped relay)
            self._rung_directly.clear()
        self._rung_directly.update(str(i) for i in task_ids)
        self.runner.wake("push")

    def on_event(self, event: OutgoingEvent) -> None:
        """In-process bus subscriber: created and retried events are doorbells."""
        if event.topic == EventType.CREATED and event.subject in self._rung_directly:
            self._rung_directly.discard(event.subject)
            return
        if event.topic in DOORBELLS:
            retried = event.topic == EventType.RETRIED
            self.ring(event.data.get("availableAt") if retried else None)

    def note_delivery(self, route: str, body: Any, *, error: str | None = None) -> None:
        """Count a pub/sub delivery and keep the latest few for /health/detailed."""
        self.deliveries[route] += 1
        event = body if isinstance(body, dict) else {}
        raw = event.get("data")
        data: dict[str, Any] = raw if isinstance(raw, dict) else {}
        self.recent.append(
            {
                "route": route,
                "id": event.get("id"),
                "type": event.get("type"),
                "source": event.get("source"),
                "subject": event.get("subject"),
                "taskId": data.get("id"),
                "taskType": data.get("taskType"),
                "error": error,
            }
        )

    async def start(self) -> None:
        bus = self.resources.bus
        if bus is not None:
            bus.subscribe(ALL, self.on_event)
            if self.shares_bus:
                self.resources.local_doorbell = self.ring_new
        loops: dict[str, Callable[[], Awaitable[None]]] = {
            "runner": self.runner.run,
            "heartbeat": self.runner.heartbeat_loop,
            "poller": self.poller.run,
            "webhooks": self.webhooks.run,
        }
        if self.resources.publisher.crosses_processes:
            loops["doorbells"] = self.doorbells.watch
        if self.scheduler is not None:
            loops["scheduler"] = self.scheduler.run
        self._tasks = [
            asyncio.create_task(keep_running(name, loop), name=f"worker-{name}")
            for name, loop in loops.items()
        ]
        self.runner.wake("poll")  # pick up whatever waited while no worker ran
        logger.info(
            "worker started", extra={"action": "worker.started", "worker_id": self.runner.worker_id}
        )

    async def stop(self) -> None:
        for task in self._tasks[1:]:
            task.cancel()
        await self.jobs.stop()
        await self.runner.stop(self.resources.settings.shutdown_grace_seconds)
        self._tasks[0].cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.webhooks.close()
        bus = self.resources.bus
        if bus is not None:
            bus.unsubscribe(ALL, self.on_event)
        if self.resources.local_doorbell == self.ring_new:
            self.resources.local_doorbell = None

    def failing(self) -> dict[str, dict[str, Any]]:
        """The worker's repeating steps that fail right now: how often in a row, and why."""
        runner, relay = self.runner, self.resources.relay
        streaks = [runner.claims, runner.finishes, runner.heartbeats, relay.draining]
        streaks += [relay.publishing, *self.jobs.streaks.values()]
        return {
            s.what: {"failures": s.failures, "lastError": s.last_error}
            for s in streaks
            if s.failures
        }

    def observe(self) -> None:
        """Set the worker's gauges before a scrape: poller mode, doorbells, slots in use."""
        metrics.POLLER_FAST.set(0 if self.doorbells.healthy() else 1)
        metrics.DOORBELLS_HEALTHY.set(1 if self.doorbells.healthy() else 0)
        for queue, slots in self.runner.capacity.items():
            metrics.CAPACITY.labels(queue.value).set(slots)
            metrics.RUNNING.labels(queue.value).set(self.runner.busy.get(queue.value, 0))

    def health(self) -> dict[str, Any]:
        runner = self.runner
        return {
            "workerId": runner.worker_id,
            "running": len(runner.running),
            "capacity": {q.value: n for q, n in runner.capacity.items()},
            "claimed": runner.stats.claimed,
            "claimedBy": runner.stats.by_dispatch,
            "finished": runner.stats.finished,
            "doorbells": self.doorbells.health(),
            "poller": self.poller.health(),
            "scheduler": self.scheduler.health() if self.scheduler else {"mode": "dapr cron"},
            "failing": self.failing(),
            "jobs": self.jobs.last,
            "webhooks": {"delivered": self.webhooks.delivered, "failed": self.webhooks.failed},
            "jobHistory": list(self.jobs.history),
            "deliveries": dict(self.deliveries),
            "recentDeliveries": list(self.recent)[-10:],
            "handlers": [
                f"{k.task_type}/{k.entity_type or '*'}" for k in self.registry.registered()
            ],
        }


class WorkerCompanion:
    """Runs a WorkerService beside an app, built once the app's resources exist."""

    name = "worker"

    def __init__(self) -> None:
        self.worker: WorkerService | None = None

    async def start(self, resources: Resources, *, shares_bus_with_api: bool) -> None:
        self.worker = WorkerService(resources, shares_bus=shares_bus_with_api)
        await self.worker.start()

    async def stop(self) -> None:
        if self.worker is not None:
            await self.worker.stop()

    def health(self) -> dict[str, Any]:
        return self.worker.health() if self.worker else {"status": "starting"}

    def observe(self) -> None:
        if self.worker is not None:
            self.worker.observe()
