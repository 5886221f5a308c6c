"""The worker's database steps: claim, heartbeat, finish, expire leases, promote due tasks.

Claims and finishes work on batches so one transaction carries many tasks: PostgreSQL commits
only a few thousand transactions a second from one client, and every task needs two.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from service.db.repositories.history import HistoryRepository
from service.db.repositories.tasks import TaskRepository
from service.domain import transitions
from service.domain.backoff import RetryPolicy
from service.domain.errors import OperationsError
from service.domain.events import EventType
from service.domain.tasks import Queue, TaskStatus
from service.usecases import history
from service.usecases.views import TaskView

Dispatch = Literal["push", "poll"]
OutcomeKind = Literal["completed", "failed", "retry", "cancelled", "released"]


async def claim(
    session: AsyncSession,
    *,
    worker_id: str,
    now: datetime,
    lease_seconds: float,
    dispatch: Dispatch,
    rooms: Mapping[str, int] | None = None,
    queue: str | None = None,
    limit: int | None = None,
    leases: Mapping[str, float] | None = None,
) -> list[TaskView]:
    """Take due pending tasks, up to rooms[queue] of each queue, highest priority first.

    `queue` and `limit` claim from one queue (the same as rooms={queue: limit}). All queues are
    claimed by one statement; the result lists them in queue order (urgent, default, bulk), each
    highest priority first, then oldest. `leases` gives the task types whose lease (heartbeat
    timeout) is not `lease_seconds`; their leases are set in the same transaction.
    """
    if rooms is None:
        if queue is None or limit is None:
            raise TypeError("claim needs rooms, or queue and limit")
        rooms = {queue: limit}
    rows = await TaskRepository(session).claim(
        rooms,
        now=now,
        values={
            "worker_id": worker_id,
            "lease_until": now + timedelta(seconds=lease_seconds),
            "updated_at": now,
        },
    )
    if not rows:
        return []
    rows = sorted(rows, key=_claim_order)
    claimed = [TaskView.from_row(r._mapping) for r in rows]
    if leases:
        claimed = await _own_leases(session, claimed, worker_id, now, leases)
    started = transitions.transition(TaskStatus.PENDING, TaskStatus.PROCESSING)
    await history.record(
        session,
        [history.Change(t, started, TaskStatus.PENDING, actor=worker_id) for t in claimed],
        now=now,
    )
    await HistoryRepository(session).start_attempts(
        [
            {
                "task_id": t.id,
                "attempt": t.attempts,
                "worker_id": worker_id,
                "dispatch": dispatch,
                "outcome": "running",
                "started_at": now,
            }
            for t in claimed
        ]
    )
    return claimed


async def _own_leases(
    session: AsyncSession,
    claimed: list[TaskView],
    worker_id: str,
    now: datetime,
    leases: Mapping[str, float],
) -> list[TaskView]:
    """Set the lease of claimed tasks whose type has its own heartbeat timeout."""
    by_lease: dict[float, list[UUID]] = {}
    for task in claimed:
        if task.task_type in leases:
            by_lease.setdefault(leases[task.task_type], []).append(task.id)
    until: dict[UUID, datetime] = {}
    for seconds, ids in by_lease.items():
        moment = now + timedelta(seconds=seconds)
        await TaskRepository(session).extend_leases(ids, worker_id, moment)
        until.update(dict.fromkeys(ids, moment))
    return [
        t.model_copy(update={"lease_until": until[t.id]}) if t.id in until else t for t in claimed
    ]


_QUEUE_ORDER = {q.value: i for i, q in enumerate(Queue)}


def _claim_order(row: Any) -> tuple[int, int, datetime, str]:
    queue = _QUEUE_ORDER.get(row.queue, len(_QUEUE_ORDER))
    return (queue, -row.priority, row.available_at, str(row.id))


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one run of a claimed task ended."""

    task: TaskView  # as claimed
    kind: OutcomeKind
    started_at: datetime
    error: str | None = None
    retry_delay: float | None = None  # asked for by the handler
    values: dict[str, Any] | None = None  # final fields, e.g. result or output_file_id


@dataclass(frozen=True, slots=True)
class _Plan:
    to: TaskStatus
    attempt_outcome: str
    values: dict[str, Any]
    message: str | None

    @property
    def event(self) -> EventType:
        """Checked by the one state machine: a run always ends from processing."""
        return transitions.transition(TaskStatus.PROCESSING, self.to)


def _plan(outcome: Outcome, now: datetime, policy: RetryPolicy, rng: random.Random) -> _Plan:
    done = {"lease_until": None, "updated_at": now, "completed_at": now}
    extra = outcome.values or {}
    if outcome.kind == "completed":
        return _Plan(
            TaskStatus.COMPLETED,
            "completed",
            {**done, "progress": 100, "error_message": None, **extra},
            None,
        )
    if outcome.kind == "cancelled":
        return _Plan(
            TaskStatus.CANCELLED,
            "cancelled",
            {**done, **extra},
            "cancelled while running",
        )
    if outcome.kind == "released":  # not the task's fault: back to the queue, no retry spent
        return _Plan(
            TaskStatus.PENDING,
            "released",
            {
                "lease_until": None,
                "worker_id": None,
                "available_at": now,
                "updated_at": now,
                **extra,
            },
            outcome.error or "released at worker shutdown",
        )
    if outcome.kind == "retry":
        task = outcome.task
        automatic = task.auto_retries
        decision = policy.decide(
            automatic, task.max_retries, rng, requested_delay=outcome.retry_delay
        )
        if decision is not None:
            return _Plan(
                TaskStatus.PENDING,
                "retried",
                {
                    "lease_until": None,
                    "updated_at": now,
                    "worker_id": None,
                    "available_at": now + timedelta(seconds=decision.delay),
                    "retry_count": task.retry_count + 1,
                    "auto_retries": decision.retry_count,
                    "error_message": outcome.error,
                    **extra,
                },
                f"retry {decision.retry_count}/{task.max_retries} "
                f"in {decision.delay:.1f}s: {outcome.error}",
            )
        message = f"{outcome.error} (gave up after {automatic} retries)"
        return _Plan(
            TaskStatus.FAILED,
            "failed",
            {**done, "error_message": message, **extra},
            message,
        )
    return _Plan(
        TaskStatus.FAILED,
        "failed",
        {**done, "error_message": outcome.error, **extra},
        outcome.error,
    )


async def finish(
    session: AsyncSession,
    *,
    worker_id: str,
    outcomes: Sequence[Outcome],
    now: datetime,
    policy: RetryPolicy,
    rng: random.Random,
) -> list[TaskView]:
    """Record how runs ended; tasks this worker no longer holds (lease lost) are left alone.

    Raises StaleOutcomes (the caller rolls back) when an outcome's task is held again by this
    worker, in a later attempt: it was handed back (lease expired while the outcome waited for
    the database) and claimed anew, and the old run must not finish the new one.
    """
    repo = TaskRepository(session)
    plans = {o.task.id: (o, _plan(o, now, policy, rng)) for o in outcomes}
    # Plain completions share their final values: one UPDATE for all of them.
    plain = [i for i, (o, p) in plans.items() if p.to is TaskStatus.COMPLETED and not o.values]
    rows: list[Any] = []
    if plain:
        values = {"status": TaskStatus.COMPLETED.value, **plans[plain[0]][1].values}
        rows.extend(await repo.finish_owned(plain, worker_id, values))
    one_by_one = plans.keys() - set(plain)
    for task_id, (_, p) in plans.items():
        if task_id in one_by_one:
            rows.extend(
                await repo.finish_owned([task_id], worker_id, {"status": p.to.value, **p.values})
            )
    stale = [r.id for r in rows if r.attempts != plans[r.id][0].task.attempts]
    if stale:
        raise StaleOutcomes(stale)
    finished = [TaskView.from_row(r._mapping) for r in rows]
    changes, attempt_rows = [], []
    for task in finished:
        o, p = plans[task.id]
        changes.append(
            history.Change(task, p.event, TaskStatus.PROCESSING, actor=worker_id, message=p.message)
        )
        attempt_rows.append(
            {
                "task_id": task.id,
                "attempt": o.task.attempts,
                "outcome": p.attempt_outcome,
                "error": o.error,
                "finished_at": now,
                "duration_ms": int((now - o.started_at).total_seconds() * 1000),
            }
        )
    await history.record(session, changes, now=now)
    await HistoryRepository(session).finish_attempts(attempt_rows)
    return finished


class StaleOutcomes(OperationsError):
    """Outcomes of an earlier attempt of tasks this worker has claimed again; not recorded."""

    def __init__(self, task_ids: Sequence[UUID]) -> None:
        super().__init__()
        self.task_ids = list(task_ids)


@dataclass(frozen=True, slots=True)
class Lease:
    """A lease the worker still holds: which attempt of the task it is, and whether the task
    was asked to cancel."""

    attempt: int
    cancel_requested: bool


async def heartbeat(
    session: AsyncSession,
    *,
    worker_id: str,
    task_ids: Sequence[UUID],
    now: datetime,
    lease_seconds: float,
) -> dict[UUID, Lease]:
    """Extend the leases of running tasks; returns the leases of those this worker still holds.

    A held lease of another attempt than the caller's run means the task was handed back and
    claimed again meanwhile: that run is stale. The runner also confirms with this a claim
    whose COMMIT went unanswered (did it take the tasks or not?).
    """
    if not task_ids:
        return {}
    rows = await TaskRepository(session).extend_leases(
        task_ids, worker_id, now + timedelta(seconds=lease_seconds)
    )
    return {r.id: Lease(r.attempts, bool(r.cancel_requested)) for r in rows}


async def expire_leases(
    session: AsyncSession,
    *,
    now: datetime,
    policy: RetryPolicy,
    rng: random.Random,
    limit: int = 200,
) -> list[TaskView]:
    """Hand back tasks whose worker stopped heartbeating: retry with backoff, or fail."""
    repo = TaskRepository(session)
    changes, attempt_rows, moved = [], [], []
    for row in await repo.expired_leases(now, limit):
        task = TaskView.from_row(row._mapping)
        error = f"lease expired: worker {task.worker_id} stopped heartbeating"
        automatic = task.auto_retries
        decision = policy.decide(automatic, task.max_retries, rng)
        if decision is not None:
            values = {
                "status": TaskStatus.PENDING.value,
                "worker_id": None,
                "lease_until": None,
                "available_at": now + timedelta(seconds=decision.delay),
                "retry_count": task.retry_count + 1,
                "auto_retries": decision.retry_count,
                "error_message": error,
                "updated_at": now,
            }
            message = f"{error}; retry {decision.retry_count}/{task.max_retries}"
        else:
            message = f"{error} (gave up after {automatic} retries)"
            values = {
                "status": TaskStatus.FAILED.value,
                "lease_until": None,
                "completed_at": now,
                "error_message": message,
                "updated_at": now,
            }
        event = transitions.transition(TaskStatus.PROCESSING, TaskStatus(str(values["status"])))
        updated = await repo.update_where(task.id, [TaskStatus.PROCESSING], values)
        if updated is None:
            continue
        after = TaskView.from_row(updated._mapping)
        moved.append(after)
        changes.append(
            history.Change(
                after, event, TaskStatus.PROCESSING, actor="detect-timeouts", message=message
            )
        )
        started = await HistoryRepository(session).attempt_started_at(task.id, task.attempts)
        attempt_rows.append(
            {
                "task_id": task.id,
                "attempt": task.attempts,
                "outcome": "lease_expired",
                "error": error,
                "finished_at": now,
                "duration_ms": int((now - started).total_seconds() * 1000) if started else None,
            }
        )
    await history.record(session, changes, now=now)
    await HistoryRepository(session).finish_attempts(attempt_rows)
    return moved


async def promote_due(session: AsyncSession, *, now: datetime, limit: int = 500) -> list[TaskView]:
    """Scheduled tasks whose time has come become pending (and ring the workers' doorbell)."""
    repo = TaskRepository(session)
    changes = []
    for row in await repo.due_scheduled(now, limit):
        updated = await repo.update_where(
            row.id, [TaskStatus.SCHEDULED], {"status": TaskStatus.PENDING.value, "updated_at": now}
        )
        if updated is not None:
            task = TaskView.from_row(updated._mapping)
            changes.append(
                history.Change(
                    task,
                    transitions.transition(TaskStatus.SCHEDULED, TaskStatus.PENDING),
                    TaskStatus.SCHEDULED,
                    actor="process-scheduled",
                    message="scheduled time reached",
                )
            )
    await history.record(session, changes, now=now)
    return [c.task for c in changes]
