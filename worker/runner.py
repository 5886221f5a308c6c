"""The runner: claims tasks in batches, runs their handlers in a bounded pool, records outcomes.

One claim loop takes as many due tasks as each queue has room for (highest priority first);
finished runs are committed together by one finisher, so a busy worker writes many tasks per
transaction while an idle one still answers a single doorbell at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from service.bootstrap import Resources
from service.clock import utcnow
from service.db.engine import session_scope
from service.domain.errors import PermanentFailure, RetryLater, TaskCancelled
from service.domain.tasks import Queue
from service.usecases import execution, history
from service.usecases.execution import Dispatch, Outcome, OutcomeKind
from service.usecases.views import TaskView
from worker.context import HandlerContext
from worker.registry import Handler, HandlerRegistry

logger = logging.getLogger(__name__)


class ExecutionTimeout(RetryLater):
    """The run took longer than its task type allows; it was stopped."""


@dataclass
class Running:
    task: TaskView
    context: HandlerContext
    started_at: datetime
    job: asyncio.Task[None] | None = None
    lost: bool = False


@dataclass
class RunnerStats:
    claimed: int = 0
    finished: int = 0
    claims: int = 0
    by_dispatch: dict[str, int] = field(default_factory=lambda: {"push": 0, "poll": 0})


class Runner:
    def __init__(self, resources: Resources, registry: HandlerRegistry) -> None:
        self.resources = resources
        self.registry = registry
        settings = resources.settings
        self.worker_id = settings.worker_id
        self.capacity = {q: settings.worker_concurrency[q.value] for q in Queue}
        self.catalog = resources.catalog
        #: task types whose lease (heartbeat timeout) is not the default one
        self.leases = {
            t.name: self.catalog.heartbeat_timeout(t.name)
            for t in self.catalog
            if self.catalog.heartbeat_timeout(t.name) != settings.lease_seconds
        }
        #: heartbeats renew every lease well before it ends: a third of the shortest
        self.heartbeat_seconds = min(
            [settings.heartbeat_seconds, *(seconds / 3 for seconds in self.leases.values())]
        )
        self.running: dict[UUID, Running] = {}
        #: running tasks per queue, kept with `running` (free() must not scan it on every claim)
        self.busy: dict[str, int] = {q.value: 0 for q in Queue}
        self.stats = RunnerStats()
        self._wake = asyncio.Event()
        self._dispatch: Dispatch = "poll"
        self._maybe_more = True
        self._room_was_short = False  # a queue had no room at the last claim
        self._stopping = False
        #: held while a claim runs: stop() waits for it, so the tasks it claims are stopped too
        self._claiming = asyncio.Lock()
        self._outcomes: asyncio.Queue[Outcome] = asyncio.Queue()
        self._idle = asyncio.Event()
        #: told how long the oldest task a poll claimed had waited (doorbell health)
        self.on_poll_claim: Callable[[float], None] | None = None

    @property
    def stopping(self) -> bool:
        return self._stopping

    # -- doorbells --------------------------------------------------------------------------
    def wake(self, dispatch: Dispatch = "push") -> None:
        """Something may be ready: claim as soon as possible."""
        if dispatch == "push" or not self._wake.is_set():
            self._dispatch = dispatch
        self._maybe_more = True
        self._wake.set()

    def wake_at(self, when: datetime, dispatch: Dispatch = "push") -> None:
        delay = (when - utcnow()).total_seconds()
        if delay <= 0:
            self.wake(dispatch)
        else:
            asyncio.get_running_loop().call_later(delay + 0.005, self.wake, dispatch)

    def free(self, queue: Queue) -> int:
        return self.capacity[queue] - self.busy.get(queue.value, 0)

    def _forget(self, task_id: UUID) -> None:
        """Drop a run from `running` (once) and release its queue slot."""
        running = self.running.pop(task_id, None)
        if running is not None:
            self.busy[running.task.queue] = self.busy.get(running.task.queue, 0) - 1

    # -- main loops -------------------------------------------------------------------------
    async def run(self, *, until_idle: bool = False) -> None:
        """Claim and run until stopped; with until_idle, return once nothing is due or running."""
        finisher = asyncio.create_task(self._finish_loop())
        try:
            while not self._stopping:
                if not until_idle:
                    await self._wake.wait()
                if self._stopping:
                    break  # stop() rang to end the loop, not to take more work
                self._wake.clear()
                dispatch, self._dispatch = self._dispatch, "poll"
                async with self._claiming:
                    claimed = await self._claim(dispatch)
                if until_idle and not claimed and not self.running:
                    if self._room_was_short:
                        continue  # a full queue's runs ended while we claimed: look again
                    return
                if until_idle and not claimed:
                    await self._wait_for_progress()
        finally:
            if until_idle or self._stopping:
                await self._drain_finisher(finisher)

    async def _wait_for_progress(self) -> None:
        self._idle.clear()
        await self._idle.wait()

    async def _claim(self, dispatch: Dispatch) -> int:
        rooms = {q: min(self.free(q), self.resources.settings.claim_batch_size) for q in Queue}
        self._room_was_short = any(n <= 0 for n in rooms.values())
        rooms = {q: n for q, n in rooms.items() if n > 0}
        if not rooms:
            return 0
        now = utcnow()
        try:
            async with session_scope(self.resources.sessionmaker) as session:
                claimed = await execution.claim(
                    session,
                    worker_id=self.worker_id,
                    rooms={q.value: n for q, n in rooms.items()},
                    now=now,
                    lease_seconds=self.resources.settings.lease_seconds,
                    dispatch=dispatch,
                    leases=self.leases,
                )
                wrote = history.wrote_outbox(session)
        except Exception:
            logger.exception(
                "claim failed", extra={"action": "task.claim_failed", "worker_id": self.worker_id}
            )
            await asyncio.sleep(0.5)
            self._wake.set()
            return 0
        if wrote:
            self.resources.relay.kick()
        per_queue: dict[str, int] = {}
        for t in claimed:
            per_queue[t.queue] = per_queue.get(t.queue, 0) + 1
        # a full queue may have more waiting: look again as soon as a run of it ends
        self._maybe_more = self._room_was_short or any(
            per_queue.get(q.value, 0) >= n for q, n in rooms.items()
        )
        self.stats.claims += 1
        self.stats.claimed += len(claimed)
        self.stats.by_dispatch[dispatch] += len(claimed)
        if dispatch == "poll" and claimed and self.on_poll_claim is not None:
            self.on_poll_claim(max((now - t.available_at).total_seconds() for t in claimed))
        for task in claimed:
            self._start(task, now)
        return len(claimed)

    def _start(self, task: TaskView, now: datetime) -> None:
        context = HandlerContext(task=task, resources=self.resources)
        running = Running(task, context, now)
        self._forget(task.id)  # never the case, but keep the slot count exact if it were
        self.running[task.id] = running
        self.busy[task.queue] = self.busy.get(task.queue, 0) + 1
        running.job = asyncio.create_task(self._execute(running), name=f"task-{task.id}")
        logger.debug(
            "task claimed",
            extra={"action": "task.claimed", "task_id": str(task.id), "worker_id": self.worker_id},
        )

    async def _run_bounded(self, handler: Handler, ctx: HandlerContext) -> None:
        """Run the handler for at most its type's execution timeout."""
        seconds = self.catalog.execution_timeout(ctx.task.task_type)
        deadline = asyncio.timeout(seconds)
        try:
            async with deadline:
                await handler(ctx)
                await ctx.flush()
        except TimeoutError as error:
            if deadline.expired():
                raise ExecutionTimeout(f"execution timeout after {seconds:g} s") from error
            raise

    async def _execute(self, running: Running) -> None:
        task, ctx = running.task, running.context
        handler = self.registry.lookup(task.task_type, task.entity_type)
        spec = self.catalog.get(task.task_type)
        kind: OutcomeKind = "completed"
        error: str | None = None
        delay: float | None = None
        try:
            if handler is None:
                raise PermanentFailure(
                    f"no handler is registered for taskType={task.task_type!r} "
                    f"entityType={task.entity_type!r}"
                )
            await self._run_bounded(handler, ctx)
        except TaskCancelled:
            kind = "cancelled"
        except RetryLater as exc:
            kind, error, delay = "retry", exc.detail, exc.delay
        except PermanentFailure as exc:
            kind, error = "failed", exc.detail
        except asyncio.CancelledError:
            if running.lost:
                return  # another worker owns it now; write nothing
            kind, error = "released", "worker shut down while the task ran"
        except Exception as exc:  # a handler's bug or a transient fault: retry with backoff
            kind, error = "retry", f"{type(exc).__name__}: {exc}"
            if spec is not None and isinstance(exc, spec.non_retryable):
                kind = "failed"  # its type says a retry would meet the same error
            logger.warning(
                "handler raised",
                extra={"action": "task.handler_error", "task_id": str(task.id), "error": error},
            )
        values = dict(ctx.final)
        if ctx.result is not None:
            values["result"] = ctx.result
        self._outcomes.put_nowait(
            Outcome(task, kind, running.started_at, error, delay, values or None)
        )

    async def _finish_loop(self) -> None:
        while True:
            batch = [await self._outcomes.get()]
            while not self._outcomes.empty():
                batch.append(self._outcomes.get_nowait())
            await self._commit(batch)

    async def _commit(self, batch: list[Outcome]) -> None:
        while True:
            try:
                async with session_scope(self.resources.sessionmaker) as session:
                    finished = await execution.finish(
                        session,
                        worker_id=self.worker_id,
                        outcomes=batch,
                        now=utcnow(),
                        policy=self.resources.retry_policy,
                        rng=self.resources.rng,
                    )
                    wrote = history.wrote_outbox(session)
                break
            except Exception:  # keep the outcomes until the database takes them
                logger.exception("finish failed", extra={"action": "task.finish_failed"})
                await asyncio.sleep(1.0)
        if wrote:
            self.resources.relay.kick()
        for outcome in batch:
            self._forget(outcome.task.id)
        for task in finished:
            if task.status == "pending":
                self.wake_at(task.available_at)
        self.stats.finished += len(batch)
        self._idle.set()
        if self._maybe_more:
            self._wake.set()

    async def _drain_finisher(self, finisher: asyncio.Task[None]) -> None:
        while self.running or not self._outcomes.empty():
            self._idle.clear()
            await self._idle.wait()
        finisher.cancel()

    # -- leases -----------------------------------------------------------------------------
    async def heartbeat_once(self) -> None:
        """Extend our leases; stop runs we lost; pass on cancel requests."""
        ids = list(self.running)
        if not ids:
            return
        by_lease: dict[float, list[UUID]] = {}
        default = self.resources.settings.lease_seconds
        for task_id in ids:
            task_type = self.running[task_id].task.task_type
            by_lease.setdefault(self.leases.get(task_type, default), []).append(task_id)
        held: dict[UUID, bool] = {}
        async with session_scope(self.resources.sessionmaker) as session:
            for seconds, group in by_lease.items():
                held |= await execution.heartbeat(
                    session,
                    worker_id=self.worker_id,
                    task_ids=group,
                    now=utcnow(),
                    lease_seconds=seconds,
                )
        for task_id in ids:
            running = self.running.get(task_id)
            if running is None:
                continue
            if task_id not in held and running.job is not None and not running.job.done():
                running.lost = True
                running.job.cancel()
                self._forget(task_id)
                logger.warning(
                    "lease lost", extra={"action": "task.lease_lost", "task_id": str(task_id)}
                )
            elif held.get(task_id):
                running.context.cancel_requested = True

    async def heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            try:
                await self.heartbeat_once()
            except Exception:
                logger.exception("heartbeat failed", extra={"action": "task.heartbeat_failed"})

    async def stop(self, grace: float) -> None:
        """Stop claiming; give running tasks `grace` seconds, then release them back to pending."""
        self._stopping = True
        self._wake.set()
        async with self._claiming:  # a claim in flight has started its tasks by now
            jobs = [r.job for r in self.running.values() if r.job is not None]
        if jobs:
            _, pending = await asyncio.wait(jobs, timeout=grace)
            for job in pending:
                job.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        deadline = asyncio.get_running_loop().time() + 10
        while (
            self.running or not self._outcomes.empty()
        ) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
