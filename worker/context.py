"""What a handler gets: its task and params, a progress reporter with the cancel check, a
logger, the file store, the sink or source its params name, and units of work for its batches.

Built for each run by `worker/wiring.py` from the process's resources, of which it holds only
these: not the Settings, not the sessionmaker, no adapter choice.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import ValidationError

from service.bulk.limits import DEFAULT_LIMITS, ReadLimits
from service.clock import utcnow
from service.db import availability
from service.db.repositories.tasks import TaskChanges
from service.db.unit_of_work import UnitOfWork, Units
from service.domain.errors import OperationsError, PermanentFailure, TaskCancelled
from service.domain.tasks import TaskRecord
from service.sinks.base import Connector
from service.storage.base import FileStore
from service.usecases import logs as log_usecases, progress as progress_usecases
from service.usecases.files import FilePolicy
from service.wire import StrictModel

LEVELS = ("debug", "info", "warning", "error")


class DatabaseAway(OperationsError):
    """The task's own progress or log could not be written: the database is unreachable. The
    run stops and the task is handed back when it is reachable again, without spending one of
    its retries (the handler did nothing wrong)."""


@contextlib.contextmanager
def _own_write() -> Iterator[None]:
    """A write of the context itself; an unreachable database stops the run (DatabaseAway).

    Only these writes are judged so: a handler's own call to another service refusing
    connections is that service's failure, retried with backoff as any other error.
    """
    try:
        yield
    except Exception as error:
        if availability.is_unavailable(error):
            raise DatabaseAway(
                "released: the database became unreachable while the task ran"
            ) from error
        raise


P = TypeVar("P", bound=StrictModel)
#: Runs a maintenance job of this process now, by name; answers its one-line detail.
JobRunner = Callable[[str], Awaitable[str]]


@dataclass
class HandlerContext:
    """Per-run context; handlers call `report` often and it raises TaskCancelled on a cancel."""

    task: TaskRecord
    #: one transaction per call, for the handler's own batches (committed when its block ends)
    unit: Units
    #: where input files are read and output files written (blocking: worker/handlers/storage.py)
    store: FileStore
    #: limits and lifetimes of the files a run registers
    files: FilePolicy
    #: opens the sink an import's params name, or the source an export's do
    connector: Connector
    #: the maintenance task type's way to run a job
    run_job: JobRunner
    #: the least time between two progress writes (OPS_PROGRESS_INTERVAL_SECONDS)
    progress_interval: float
    #: the worker running it, for logs
    worker_id: str
    #: what an import's reader allows (sizes, cells, blank input): the bulk limits, with the
    #: operator's OPS_IMPORT_MAX_BLANK_RATIO
    read_limits: ReadLimits = DEFAULT_LIMITS
    cancel_requested: bool = False
    result: dict[str, Any] | None = None
    #: what the run leaves on the task when it ends (output file, figures)
    final: TaskChanges = field(default_factory=lambda: TaskChanges())
    _last_write: float = 0.0
    _last_check: float = field(default_factory=time.monotonic)
    _pending: progress_usecases.ProgressUpdate | None = None

    @property
    def params(self) -> dict[str, Any]:
        return self.task.params

    def params_as(self, model: type[P]) -> P:
        """The params as the catalog checked them at create; a task written some other way with
        bad params fails at once, naming them."""
        try:
            return model.model_validate(self.task.params)
        except ValidationError as error:
            problems = "; ".join(
                f"params.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                for e in error.errors(include_url=False)
            )
            raise PermanentFailure(f"invalid params: {problems}") from error

    def check_cancelled(self) -> None:
        if self.cancel_requested:
            raise TaskCancelled(f"task {self.task.id} was cancelled while it ran")

    async def report(self, **fields: Any) -> None:
        """Progress and counts (progress, total/processed/succeeded/failed_items).

        Writes at most once per progress interval; always learns of a cancel within about a second.
        """
        update = progress_usecases.ProgressUpdate(**fields)
        now_mono = time.monotonic()
        if now_mono - self._last_write >= self.progress_interval:
            await self._write(update, now_mono)
        else:
            self._pending = update
            if now_mono - self._last_check >= 1.0:
                await self._check(now_mono)
        self.check_cancelled()

    async def flush(self) -> None:
        """Write a progress update that the throttle held back."""
        if self._pending is not None:
            await self._write(self._pending, time.monotonic())

    async def _write(self, update: progress_usecases.ProgressUpdate, now_mono: float) -> None:
        with _own_write():
            task = await self._store(update)
        self.cancel_requested = self.cancel_requested or task.cancel_requested
        self._last_write = self._last_check = now_mono
        self._pending = None

    async def _store(self, update: progress_usecases.ProgressUpdate) -> TaskRecord:
        async with self.unit() as uow:
            return await progress_usecases.report(
                uow,
                self.task.id,
                update,
                now=utcnow(),
                announce=True,
                announce_every=self.progress_interval,
            )

    async def _check(self, now_mono: float) -> None:
        with _own_write():
            async with self.unit() as uow:
                await self.learn_cancel(uow)
        self._last_check = now_mono

    async def learn_cancel(self, uow: UnitOfWork) -> None:
        """Read the cancel flag in the caller's transaction (e.g. with a batch it commits), so
        the next `report` stops right after that batch instead of up to a second later."""
        flag = await progress_usecases.cancel_requested(uow, self.task.id)
        self.cancel_requested = self.cancel_requested or flag

    async def log(self, level: str, message: str, **data: Any) -> None:
        """Append a line to the task's log (visible through GET /tasks/{id}/logs)."""
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}")
        entry = log_usecases.LogEntry(
            self.task.id, level, message, utcnow(), self.task.attempts, data or None
        )
        with _own_write():
            async with self.unit() as uow:
                await log_usecases.append(uow, [entry])
