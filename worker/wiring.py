"""The worker's wiring of handlers: each run's context, built from the process's resources, and
the one place the worker picks sink and source adapters (by a task's params)."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from service.bootstrap import Resources
from service.bulk.limits import DEFAULT_LIMITS, ReadLimits
from service.bulk.params import SinkParams
from service.db.unit_of_work import Units
from service.domain.tasks import TaskRecord
from service.sinks.base import Sink, Source
from service.sinks.dapr import DaprServiceSink, DaprServiceSource
from service.sinks.local import LocalSink, LocalSource
from service.usecases.files import FilePolicy
from worker.context import HandlerContext
from worker.jobs import JOBS

if TYPE_CHECKING:  # httpx loads with the first service sink or source (~45 ms at start-up)
    import httpx


@dataclass(frozen=True, slots=True)
class Connections:
    """Sinks and sources by a task's params: the local store, or the owning service through
    this process's Dapr sidecar (a client of its own for each sink or source)."""

    units: Units
    dapr_endpoint: str
    dapr_token: str = ""

    def sink(self, params: SinkParams) -> Sink:
        if params.sink == "local":
            return LocalSink(self.units)
        # the params' own validation made sure a service sink names both
        assert params.target_service is not None
        assert params.method is not None
        client = self._client(60, connect=2)
        return DaprServiceSink(client, params.target_service, params.method)

    def source(self, params: SinkParams) -> Source:
        if params.sink == "local":
            return LocalSource(self.units)
        assert params.target_service is not None
        assert params.method is not None
        return DaprServiceSource(self._client(60), params.target_service, params.method)

    def _client(self, seconds: float, *, connect: float | None = None) -> httpx.AsyncClient:
        import httpx

        timeout = httpx.Timeout(seconds, connect=seconds if connect is None else connect)
        headers = {"dapr-api-token": self.dapr_token} if self.dapr_token else {}
        return httpx.AsyncClient(base_url=self.dapr_endpoint, headers=headers, timeout=timeout)


def handler_context(task: TaskRecord, resources: Resources) -> HandlerContext:
    """The context of one run of `task` (the runner builds one per claim)."""
    settings = resources.settings
    return HandlerContext(
        task=task,
        unit=resources.unit,
        store=resources.store,
        files=FilePolicy.from_settings(settings),
        connector=Connections(resources.unit, settings.dapr_http_endpoint, settings.dapr_api_token),
        run_job=functools.partial(_run_job, resources),
        progress_interval=settings.progress_interval_seconds,
        worker_id=settings.worker_id,
        read_limits=_read_limits(settings.import_max_blank_ratio),
    )


@functools.lru_cache(maxsize=4)
def _read_limits(max_blank_ratio: int) -> ReadLimits:
    """The bulk limits with the operator's blank ratio: made once, not for every run (a
    dataclasses.replace takes ~10 µs, a twentieth of a short task's whole cost)."""
    return dataclasses.replace(DEFAULT_LIMITS, max_blank_ratio=max_blank_ratio)


async def _run_job(resources: Resources, name: str) -> str:
    return await JOBS[name](resources)
