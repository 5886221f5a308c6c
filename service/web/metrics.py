"""GET /metrics: Prometheus text for the scraper, in both apps.

Unauthenticated on purpose, like /health: the scraper reaches the pod's port inside the
cluster (the NetworkPolicy decides who may), and nothing in it names a user or a task. The
database gauges are sampled when a scrape finds them older than OPS_METRICS_SAMPLE_SECONDS
(one bounded statement; see service/db/repositories/gauges.py), so scrapes, however many
and however often, cost the database at most one such statement per that interval and
process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from starlette.requests import Request
from starlette.responses import Response

from service.bootstrap import Resources
from service.clock import utcnow
from service.db.engine import session_scope
from service.db.repositories import gauges
from service.logging import FailureStreak
from service.telemetry import metrics

logger = logging.getLogger(__name__)

#: a sample that takes longer is given up (the gauges keep their last values)
SAMPLE_TIMEOUT = 2.0

#: called before each scrape to set the gauges of in-memory state (the worker's)
Refresher = Callable[[], None]


class DatabaseGauges:
    """Samples the database gauges at most every `interval` seconds."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        self.interval = resources.settings.metrics_sample_seconds
        self.cap = resources.settings.metrics_depth_cap
        self._at = float("-inf")
        self._lock = asyncio.Lock()
        self.failures = FailureStreak(logger, "sampling the metrics' database gauges", "metrics")

    async def refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self._at < self.interval:
                return
            self._at = time.monotonic()
            try:
                async with asyncio.timeout(SAMPLE_TIMEOUT):
                    await self._sample()
            except Exception as error:  # the scrape still answers, with the last values
                self.failures.failed(error)
            else:
                self.failures.succeeded()

    async def _sample(self) -> None:
        now = utcnow()
        async with session_scope(self.resources.sessionmaker) as session:
            sample = await gauges.sample(session, now=now, cap=self.cap)
        for queue in sample.queues:
            metrics.QUEUE_DEPTH.labels(queue.queue).set(queue.depth)
            age = (now - queue.oldest_due).total_seconds() if queue.oldest_due else 0.0
            metrics.QUEUE_OLDEST_SECONDS.labels(queue.queue).set(max(0.0, age))
        metrics.OUTBOX_BACKLOG.set(sample.outbox_backlog)
        oldest = sample.outbox_oldest
        metrics.OUTBOX_OLDEST_SECONDS.set(max(0.0, (now - oldest).total_seconds()) if oldest else 0)
        metrics.SAMPLED_AT.set(time.time())


def registry() -> CollectorRegistry:
    """The process's registry, or every process's through the multiprocess directory."""
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return REGISTRY
    combined = CollectorRegistry()
    multiprocess.MultiProcessCollector(combined)  # type: ignore[no-untyped-call]
    return combined


async def scrape(request: Request) -> Response:
    """GET /metrics, a Starlette endpoint: the API routes it through FastAPI, the worker not."""
    state = request.app.state
    sampler: DatabaseGauges | None = getattr(state, "database_gauges", None)
    if sampler is None and getattr(state, "resources", None) is not None:
        sampler = state.database_gauges = DatabaseGauges(state.resources)
    if sampler is not None:
        await sampler.refresh()
    for refresh in getattr(state, "metrics_refreshers", ()):
        refresh()
    body = await asyncio.to_thread(generate_latest, registry())
    return Response(body, media_type=CONTENT_TYPE_LATEST)
