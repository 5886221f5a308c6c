"""The runner: claims tasks in batches, runs their handlers in a bounded pool, records outcomes.

One claim loop takes as many due tasks as each queue has room for (highest priority first);
finished runs are committed together by one finisher, so a busy worker writes many tasks per
transaction while an idle one still answers a single doorbell at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from opentelemetry.trace import Span, SpanKind

from service.bootstrap import Resources
from service.clock import utcnow
from service.db.repositories.tasks import TaskChanges
from service.domain.errors import PermanentFailure, RetryLater, TaskCancelled
from service.domain.settlement import Ending
from service.domain.tasks import Queue, TaskRecord, TaskStatus
from service.logging import FailureStreak
from service.telemetry import metrics, tracing
from service.usecases import execution, queues as queue_usecases
from service.usecases.execution import Dispatch, Outcome, StaleOutcomes
from worker import wiring
from worker.context import DatabaseAway, HandlerContext
from worker.registry import Handler, HandlerRegistry

logger = logging.getLogger(__name__)

#: Seconds between tries of a claim or a finish that failed (doubling up to the cap): short,
#: because the database being back should put the worker back to work at once.
RETRY_FIRST, RETRY_CAP = 0.25, 1.0


#: A queue whose runs end this fast (seconds, a moving average) claims ahead: up to a claim
#: batch of tasks waiting for a slot, so one claim and one finish carry many tasks
#: (Graphile Worker and River fetch into a local buffer for the same reason). Slow work is
#: never claimed ahead: a task must not wait here while another worker could run it.
PREFETCH_BELOW = 0.05
#: At most this many seconds of a queue's work (at its pace, over its slots) is claimed ahead,
#: and never more than a claim batch: enough that one claim feeds the slots while the next
#: is under way, little enough that a task does not wait here long.
PREFETCH_SECONDS = 0.5
#: Weight of the newest run in that average.
EMA_WEIGHT = 0.2


class ExecutionTimeout(RetryLater):
    """The run took longer than its task type allows; it was stopped."""


@dataclass
class Running:
    task: TaskRecord
    context: HandlerContext
    started_at: datetime
    #: event-loop time at which the lease ends unless a heartbeat extends it
    lease_ends: float = 0.0
    job: asyncio.Task[None] | None = None
    lost: bool = False
    #: whether it counts against its queue's concurrency: from the claim until its handler
    #: ends (its outcome then waits for the finisher, holding the lease but no slot)
    holds_slot: bool = True
    #: event-loop time its handler started (a run claimed ahead waits for a slot first)
    launched: float = 0.0


@dataclass
class RunnerStats:
    claimed: int = 0
    finished: int = 0
    claims: int = 0
    #: how many tasks each of the last claims took (the sizes of its batches)
    claim_sizes: deque[int] = field(default_factory=lambda: deque(maxlen=100))
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
        #: claimed ahead (see PREFETCH_BELOW): in `running` too (they hold leases), not started
        self.queued: dict[str, deque[Running]] = {q.value: deque() for q in Queue}
        #: moving average of each queue's run time, seconds (None until a run ended)
        self.pace: dict[str, float | None] = {q.value: None for q in Queue}
        self.stats = RunnerStats()
        self._wake = asyncio.Event()
        self._dispatch: Dispatch = "poll"
        self._maybe_more = True
        self._room_was_short = False  # a queue had no room at the last claim
        self._stopping = False
        #: held while a claim runs: stop() waits for it, so the tasks it claims are stopped too
        self._claiming = asyncio.Lock()
        self._outcomes: asyncio.Queue[Outcome] = asyncio.Queue()
        self._finisher: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        #: claims whose COMMIT failed after the UPDATE returned these tasks: taken or not?
        self._in_doubt: list[tuple[TaskRecord, datetime]] = []
        self.claims = FailureStreak(logger, "claiming tasks", "task.claim")
        self.finishes = FailureStreak(logger, "recording finished runs", "task.finish")
        self.heartbeats = FailureStreak(logger, "extending leases", "task.heartbeat")
        #: told how long the oldest task a poll claimed had waited (doorbell health)
        self.on_poll_claim: Callable[[float], None] | None = None
        #: the paused queues, read at most once a second (the claim skips them)
        self.paused = queue_usecases.PausedQueues()
        self._paused_recheck = False

    @property
    def stopping(self) -> bool:
        return self._stopping

    # -- doorbells --------------------------------------------------------------------------
    def wake(self, dispatch: Dispatch = "push") -> None:
        """Something may be ready: claim as soon as possible. `dispatch` says who rang: a
        delivered event (push) or the fallback poller (poll); a pending push is not relabelled
        by a poll."""
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

    def room(self, queue: Queue) -> int:
        """How many tasks a claim may take for `queue`: its free slots and, while its runs
        are fast, up to PREFETCH_SECONDS of work waiting for a slot (refilled at half)."""
        pace = self.pace[queue.value]
        if pace is None or pace >= PREFETCH_BELOW:
            return self.free(queue) - len(self.queued[queue.value])
        batch, waiting = self.resources.settings.claim_batch_size, len(self.queued[queue.value])
        ahead = min(batch, int(self.capacity[queue] * PREFETCH_SECONDS / max(pace, 1e-4)))
        if waiting > ahead // 2:
            return 0  # refill at half: one claim of many, not one per finished run
        return self.free(queue) + ahead - waiting

    def _forget(self, task_id: UUID) -> None:
        """Drop a run from `running` (once) and release its queue slot if it still holds it."""
        running = self.running.pop(task_id, None)
        if running is not None:
            self._release_slot(running)

    def _release_slot(self, running: Running) -> None:
        if running.holds_slot:
            running.holds_slot = False
            self.busy[running.task.queue] = self.busy.get(running.task.queue, 0) - 1
            self._launch_queued(running.task.queue)

    def _launch_queued(self, queue: str) -> None:
        """Start tasks claimed ahead while their queue has free slots."""
        waiting = self.queued[queue]
        while waiting and self.busy.get(queue, 0) < self.capacity[Queue(queue)]:
            running = waiting.popleft()
            if self.running.get(running.task.id) is running:  # not stopped meanwhile
                self._launch(running)

    def _launch(self, running: Running) -> None:
        running.holds_slot = True
        running.launched = asyncio.get_running_loop().time()
        self.busy[running.task.queue] = self.busy.get(running.task.queue, 0) + 1
        running.job = asyncio.create_task(self._execute(running), name=f"task-{running.task.id}")

    # -- main loops -------------------------------------------------------------------------
    async def run(self, *, until_idle: bool = False) -> None:
        """Claim and run until stopped; with until_idle, return once nothing is due or running."""
        if self._finisher is None or self._finisher.done():
            # kept across a restart of this loop (after a crash): it may hold a batch
            self._finisher = asyncio.create_task(self._finish_loop(), name="runner-finisher")
        finisher = self._finisher
        try:
            while not self._stopping:
                if not until_idle:
                    await self._wake.wait()
                if self._stopping:
                    break  # stop() rang to end the loop, not to take more work
                self._wake.clear()
                # A claim that follows a freed slot (a backlog) keeps the label of the doorbell
                # that found the work: the last explicit wake's, push or poll.
                dispatch = self._dispatch
                async with self._claiming:
                    claimed = await self._claim(dispatch)
                if until_idle and not claimed and not self.running:
                    if self._room_was_short:
                        continue  # a full queue's runs ended while we claimed: look again
                    return
                if self.claims.failures:
                    await self._pause(dispatch)
                elif until_idle and not claimed:
                    await self._wait_for_progress()
        finally:
            if until_idle or self._stopping:
                await self._drain_finisher(finisher)

    async def _wait_for_progress(self) -> None:
        self._idle.clear()
        await self._idle.wait()

    async def _pause(self, dispatch: Dispatch) -> None:
        """After a failed claim: wait a little (whatever rings meanwhile), then claim again."""
        await asyncio.sleep(self.claims.backoff(RETRY_FIRST, RETRY_CAP))
        self._wake.set()

    def _skip_paused(self, rooms: dict[Queue, int], paused: frozenset[str]) -> dict[Queue, int]:
        """Rooms without the paused queues; while one is left out, look again in a second or
        so, so a resume is noticed without waiting for the slow poll."""
        kept = {q: n for q, n in rooms.items() if q.value not in paused}
        if len(kept) < len(rooms) and not self._paused_recheck:
            self._paused_recheck = True
            asyncio.get_running_loop().call_later(self.paused.every + 0.05, self._recheck_paused)
        return kept

    def _recheck_paused(self) -> None:
        self._paused_recheck = False
        self.wake("poll")

    async def _claim(self, dispatch: Dispatch) -> int:
        if self._in_doubt and not await self._settle_in_doubt():
            return 0
        rooms = {q: min(self.room(q), self.resources.settings.claim_batch_size) for q in Queue}
        self._room_was_short = any(n <= 0 for n in rooms.values())
        rooms = {q: n for q, n in rooms.items() if n > 0}
        if not rooms:
            return 0
        now = utcnow()
        claimed: list[TaskRecord] = []
        try:
            async with self.resources.unit() as uow:
                paused = await self.paused.get(uow)  # cached: read at most once a second
                if paused:
                    rooms = self._skip_paused(rooms, paused)
                    if not rooms:
                        return 0
                claimed = await execution.claim(
                    uow,
                    worker_id=self.worker_id,
                    rooms={q.value: n for q, n in rooms.items()},
                    now=now,
                    lease_seconds=self.resources.settings.lease_seconds,
                    dispatch=dispatch,
                    leases=self.leases,
                )
        except Exception as error:
            self.claims.failed(error, worker_id=self.worker_id)
            # The UPDATE returned these tasks, then the COMMIT failed: if its answer was lost
            # rather than the commit, they are ours, under a lease no one extends.
            self._in_doubt += [(task, now) for task in claimed]
            return 0
        self.claims.succeeded()
        per_queue: dict[str, int] = {}
        for t in claimed:
            per_queue[t.queue] = per_queue.get(t.queue, 0) + 1
        # a full queue may have more waiting: look again as soon as a run of it ends
        self._maybe_more = self._room_was_short or any(
            per_queue.get(q.value, 0) >= n for q, n in rooms.items()
        )
        self.stats.claims += 1
        self.stats.claim_sizes.append(len(claimed))
        self.stats.claimed += len(claimed)
        self.stats.by_dispatch[dispatch] += len(claimed)
        _observe_claim(dispatch, claimed, now)
        if dispatch == "poll" and claimed and self.on_poll_claim is not None:
            self.on_poll_claim(max((now - t.available_at).total_seconds() for t in claimed))
        for task in claimed:
            self._start(task, now)
        return len(claimed)

    async def _settle_in_doubt(self) -> bool:
        """Run the tasks that claims with an unanswered COMMIT did take; False if still unknown.

        Confirming renews the lease only where the task is still this worker's and in the
        attempt that claim made: if the lease ran out and the task was handed back meanwhile,
        it is someone else's run now (or a later claim of ours), never a second one of this.
        """
        doubtful = {task.id: (task, at) for task, at in self._in_doubt}
        confirmed = asyncio.get_running_loop().time()
        try:
            held = await self._renew([task for task, _ in doubtful.values()])
        except Exception as error:
            self.claims.failed(error, worker_id=self.worker_id)
            return False
        self._in_doubt.clear()
        taken = [
            doubtful[task_id]
            for task_id, held_lease in held.items()
            if held_lease.attempt == doubtful[task_id][0].attempts and task_id not in self.running
        ]
        if doubtful:
            logger.warning(
                "claims in doubt settled: %d of %d tasks were taken, running them",
                len(taken),
                len(doubtful),
                extra={"action": "task.claim_settled", "worker_id": self.worker_id},
            )
        for task, claimed_at in taken:
            self._start(task, claimed_at)
            self.running[task.id].lease_ends = confirmed + self._lease_of(task)
        self.stats.claimed += len(taken)
        return True

    def _start(self, task: TaskRecord, now: datetime) -> None:
        """Run a claimed task now if its queue has a free slot, else queue it for the next."""
        context = wiring.handler_context(task, self.resources)
        loop = asyncio.get_running_loop()
        lease_ends = loop.time() - (utcnow() - now).total_seconds()
        running = Running(task, context, now, lease_ends + self._lease_of(task), holds_slot=False)
        older = self.running.get(task.id)
        if older is not None and older.job is not None and not older.job.done():
            older.lost = True  # never the case (fencing stops it first); never two runs at once
            older.job.cancel()
        self._forget(task.id)
        self.running[task.id] = running
        if self.busy.get(task.queue, 0) < self.capacity[Queue(task.queue)]:
            self._launch(running)
        else:
            self.queued[task.queue].append(running)
        if logger.isEnabledFor(logging.DEBUG):  # hundreds a second: no fields built for nothing
            logger.debug(
                "task claimed",
                extra={
                    "action": "task.claimed",
                    "task_id": str(task.id),
                    "worker_id": self.worker_id,
                },
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
        """Run the task's handler in its span, a child of the request that created the task."""
        task = running.task
        with tracing.span(
            f"run {task.task_type}",
            parent=tracing.context_from(task.traceparent),
            kind=SpanKind.CONSUMER,
            attributes={
                "ops.task_id": str(task.id),
                "ops.task_type": task.task_type,
                "ops.queue": task.queue,
                "ops.attempt": task.attempts,
            },
        ) as span:
            await self._execute_in_span(running, span)

    async def _execute_in_span(self, running: Running, span: Span) -> None:
        task, ctx = running.task, running.context
        handler = self.registry.lookup(task.task_type, task.entity_type)
        spec = self.catalog.get(task.task_type)
        ending = Ending.COMPLETED
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
            ending = Ending.CANCELLED
        except RetryLater as exc:
            ending, error, delay = Ending.RETRY, exc.detail, exc.delay
        except PermanentFailure as exc:
            ending, error = Ending.FAILED, exc.detail
        except asyncio.CancelledError:
            if running.lost:
                return  # another worker owns it now; write nothing
            ending = Ending.RELEASED  # graceful shutdown
        except DatabaseAway as exc:  # its own progress or log could not be written
            ending, error = Ending.RELEASED, exc.detail
        except Exception as exc:  # a handler's bug or a transient fault: retry with backoff
            ending, error = Ending.RETRY, f"{type(exc).__name__}: {exc}"
            if spec is not None and isinstance(exc, spec.non_retryable):
                ending = Ending.FAILED  # its type says a retry would meet the same error
            logger.warning(
                "handler raised",
                extra={"action": "task.handler_error", "task_id": str(task.id), "error": error},
            )
        final: TaskChanges = {**ctx.final}
        if ctx.result is not None:
            final["result"] = ctx.result
        _observe_run(running, ending, ctx.result)
        _end_span(span, ending, error)
        self._outcomes.put_nowait(
            Outcome(task, ending, running.started_at, error, delay, final or None)
        )
        self._note_pace(task.queue, running)
        # The handler is done: its slot may take the next task while the finisher records
        # this outcome, so claims and finishes overlap instead of taking turns.
        self._release_slot(running)
        if self._maybe_more:
            self._wake.set()

    def _note_pace(self, queue: str, running: Running) -> None:
        took = asyncio.get_running_loop().time() - running.launched  # the handler's time only
        pace = self.pace.get(queue)
        self.pace[queue] = took if pace is None else pace + EMA_WEIGHT * (took - pace)

    async def _finish_loop(self) -> None:
        while True:
            batch = [await self._outcomes.get()]
            while not self._outcomes.empty():
                batch.append(self._outcomes.get_nowait())
            await self._commit(batch)

    async def _commit(self, batch: list[Outcome]) -> None:
        """Record the outcomes, trying until the database takes them.

        Trying again is safe even when a COMMIT's answer was lost: a finish only changes
        tasks this worker still holds in the attempt that ran, so a second try changes nothing.
        """
        recorded = list(batch)
        while True:
            try:
                async with self.resources.unit() as uow:
                    finished = await execution.finish(
                        uow,
                        worker_id=self.worker_id,
                        outcomes=recorded,
                        now=utcnow(),
                        policy=self.resources.retry_policy,
                        rng=self.resources.rng,
                    )
                break
            except StaleOutcomes as stale:
                recorded = self._drop_stale(recorded, stale.task_ids)
            except Exception as error:  # keep the outcomes until the database takes them
                self.finishes.failed(error, worker_id=self.worker_id)
                await asyncio.sleep(self.finishes.backoff(RETRY_FIRST, RETRY_CAP))
        self.finishes.succeeded()
        for outcome in batch:
            self._forget_run(outcome.task)
        for task in finished:
            if task.status is TaskStatus.PENDING:
                self.wake_at(task.available_at)
        self.stats.finished += len(batch)
        self._idle.set()
        if self._maybe_more:
            self._wake.set()

    def _drop_stale(self, outcomes: list[Outcome], task_ids: list[UUID]) -> list[Outcome]:
        stale = set(task_ids)
        for task_id in stale:
            logger.warning(
                "outcome of an earlier attempt dropped: the task was handed back and claimed again",
                extra={"action": "task.outcome_stale", "task_id": str(task_id)},
            )
        return [o for o in outcomes if o.task.id not in stale]

    def _forget_run(self, task: TaskRecord) -> None:
        """Forget a finished run, unless the slot is a later attempt's (claimed again)."""
        running = self.running.get(task.id)
        if running is not None and running.task.attempts == task.attempts:
            self._forget(task.id)

    async def _drain_finisher(self, finisher: asyncio.Task[None]) -> None:
        while self.running or not self._outcomes.empty():
            self._idle.clear()
            await self._idle.wait()
        finisher.cancel()

    # -- leases -----------------------------------------------------------------------------
    async def heartbeat_once(self) -> bool:
        """Extend our leases; stop runs we lost; pass on cancel requests.

        Returns whether there was anything to extend (the database was asked).
        """
        runs = dict(self.running)
        if not runs:
            return False
        sent = asyncio.get_running_loop().time()
        held = await self._renew([running.task for running in runs.values()])
        for task_id, running in runs.items():
            if self.running.get(task_id) is not running:
                continue  # finished (or replaced) while we asked
            held_lease = held.get(task_id)
            if held_lease is not None and held_lease.attempt == running.task.attempts:
                running.lease_ends = sent + self._lease_of(running.task)
                if held_lease.cancel_requested:
                    running.context.cancel_requested = True
            elif running.job is None or not running.job.done():
                self._stop_run(running, "lease lost")
        return True

    def _stop_run(self, running: Running, why: str) -> None:
        """Stop a run this worker may no longer own; it writes nothing (see _execute)."""
        running.lost = True
        if running.job is not None:
            running.job.cancel()
        self._forget(running.task.id)
        logger.warning(why, extra={"action": "task.lease_lost", "task_id": str(running.task.id)})

    def fence(self, margin: float) -> int:
        """Stop the runs whose lease ends within `margin` seconds; returns how many.

        Called when a heartbeat failed: once a lease has run out, detect-timeouts may hand the
        task to another worker, so a run must stop before its lease ends, not when the
        database answers again. The task is then retried (by whoever claims it next).
        """
        deadline = asyncio.get_running_loop().time() + margin
        doomed = [
            r
            for r in self.running.values()
            if r.lease_ends <= deadline and (r.job is None or not r.job.done())
        ]
        for running in doomed:
            self._stop_run(running, "lease not renewed in time (database unreachable)")
        return len(doomed)

    def _release_queued(self) -> None:
        """Hand back the tasks claimed ahead that never started (no retry spent)."""
        for waiting in self.queued.values():
            while waiting:
                running = waiting.popleft()
                if self.running.get(running.task.id) is running:
                    self._outcomes.put_nowait(
                        Outcome(running.task, Ending.RELEASED, running.started_at)
                    )

    async def _renew(self, tasks: list[TaskRecord]) -> dict[UUID, execution.Lease]:
        """Extend the leases this worker holds on `tasks`, each by its type's lease length."""
        by_lease: dict[float, list[UUID]] = {}
        for task in tasks:
            by_lease.setdefault(self._lease_of(task), []).append(task.id)
        held: dict[UUID, execution.Lease] = {}
        async with self.resources.unit() as uow:
            for seconds, group in by_lease.items():  # one UPDATE per lease length
                held |= await execution.heartbeat(
                    uow,
                    worker_id=self.worker_id,
                    task_ids=group,
                    now=utcnow(),
                    lease_seconds=seconds,
                )
        return held

    def _lease_of(self, task: TaskRecord) -> float:
        """The task's lease: its type's heartbeat timeout, else the service's."""
        return self.leases.get(task.task_type, self.resources.settings.lease_seconds)

    async def heartbeat_loop(self) -> None:
        """Extend the leases every heartbeat interval; while that fails, try again within a
        second, and stop the runs whose lease would end before the next try could renew it."""
        interval = self.heartbeat_seconds
        patience = interval / 2  # a heartbeat slower than this counts as failed
        shortest = min([self.resources.settings.lease_seconds, *self.leases.values()])
        skew = min(1.0, shortest / 10)  # clocks of workers and database differ
        wait = interval
        while True:
            await asyncio.sleep(wait)
            try:
                async with asyncio.timeout(patience):
                    asked = await self.heartbeat_once()
            except Exception as error:
                self.heartbeats.failed(error, worker_id=self.worker_id)
                wait = min(interval, self.heartbeats.backoff(RETRY_FIRST, RETRY_CAP))
                self.fence(margin=wait + patience + skew)
            else:
                wait = interval
                if asked:
                    self.heartbeats.succeeded()

    async def stop(self, grace: float) -> None:
        """Stop claiming; give running tasks `grace` seconds, then release them back to pending."""
        self._stopping = True
        self._wake.set()
        async with self._claiming:  # a claim in flight has started its tasks by now
            self._release_queued()
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


def _observe_claim(dispatch: Dispatch, claimed: list[TaskRecord], now: datetime) -> None:
    """A claim batch's metrics: how many, by which path, and how long each task waited."""
    metrics.CLAIM_BATCH.observe(len(claimed))
    if not claimed:
        return
    metrics.TASKS_CLAIMED.labels(dispatch).inc(len(claimed))
    for task in claimed:
        waited = (now - task.available_at).total_seconds()
        metrics.QUEUE_WAIT_SECONDS.labels(task.task_type).observe(max(0.0, waited))


def _end_span(span: Span, ending: Ending, error: str | None) -> None:
    span.set_attribute("ops.ending", ending.value)
    if error is not None:
        tracing.mark_error(span, error)


def _observe_run(running: Running, ending: Ending, result: dict[str, Any] | None) -> None:
    """A run's time by how it ended; an import's rows per second (its result says it)."""
    task = running.task
    took = asyncio.get_running_loop().time() - running.launched
    metrics.RUN_SECONDS.labels(task.task_type, ending.value).observe(took)
    if task.task_type != "import" or not result:
        return
    entity = task.entity_type or "none"
    rate = result.get("rowsPerSecond")
    if isinstance(rate, int | float) and rate > 0:
        metrics.IMPORT_ROWS_PER_SECOND.labels(entity).observe(float(rate))
