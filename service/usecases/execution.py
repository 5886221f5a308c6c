"""The worker's database steps: claim, heartbeat, finish, expire leases, promote due tasks.

Claims and finishes work on batches so one transaction carries many tasks: PostgreSQL commits
only a few thousand transactions a second from one client, and every task needs two. How a
run ends is settled by the domain (service/domain/settlement.py); this records it.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

from service.db.repositories.history import HistoryRepository
from service.db.repositories.tasks import TaskChanges, TaskRepository
from service.db.unit_of_work import UnitOfWork
from service.domain import transitions
from service.domain.backoff import RetryPolicy
from service.domain.errors import OperationsError
from service.domain.settlement import Budget, Ending, Settlement, settle
from service.domain.tasks import Queue, TaskRecord, TaskStatus
from service.usecases import history, notifications

Dispatch = Literal["push", "poll"]


async def claim(
    uow: UnitOfWork,
    *,
    worker_id: str,
    now: datetime,
    lease_seconds: float,
    dispatch: Dispatch,
    rooms: Mapping[str, int] | None = None,
    queue: str | None = None,
    limit: int | None = None,
    leases: Mapping[str, float] | None = None,
) -> list[TaskRecord]:
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
    claimed = await TaskRepository(uow.session).claim(
        rooms,
        now=now,
        values={
            "worker_id": worker_id,
            "lease_until": now + timedelta(seconds=lease_seconds),
            "updated_at": now,
        },
    )
    if not claimed:
        return []
    claimed.sort(key=_claim_order)
    if leases:
        claimed = await _own_leases(uow, claimed, worker_id, now, leases)
    started = transitions.transition(TaskStatus.PENDING, TaskStatus.PROCESSING)
    await history.record(
        uow,
        [history.Change(t, started, TaskStatus.PENDING, actor=worker_id) for t in claimed],
        now=now,
    )
    await HistoryRepository(uow.session).start_attempts(
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
    uow: UnitOfWork,
    claimed: list[TaskRecord],
    worker_id: str,
    now: datetime,
    leases: Mapping[str, float],
) -> list[TaskRecord]:
    """Set the lease of claimed tasks whose type has its own heartbeat timeout."""
    by_lease: dict[float, list[UUID]] = {}
    for task in claimed:
        if task.task_type in leases:
            by_lease.setdefault(leases[task.task_type], []).append(task.id)
    until: dict[UUID, datetime] = {}
    for seconds, ids in by_lease.items():
        moment = now + timedelta(seconds=seconds)
        await TaskRepository(uow.session).extend_leases(ids, worker_id, moment)
        until.update(dict.fromkeys(ids, moment))
    return [replace(t, lease_until=until[t.id]) if t.id in until else t for t in claimed]


_QUEUE_ORDER = {q.value: i for i, q in enumerate(Queue)}


def _claim_order(task: TaskRecord) -> tuple[int, int, datetime, UUID]:
    queue = _QUEUE_ORDER.get(task.queue, len(_QUEUE_ORDER))
    return (queue, -task.priority, task.available_at, task.id)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one run of a claimed task ended."""

    task: TaskRecord  # as claimed
    ending: Ending
    started_at: datetime
    error: str | None = None
    retry_delay: float | None = None  # asked for by the handler
    #: what the handler leaves on the task (result, output file, counts)
    final: TaskChanges | None = None


def _settle(outcome: Outcome, now: datetime, policy: RetryPolicy, rng: random.Random) -> Settlement:
    task = outcome.task
    return settle(
        Budget(task.retry_count, task.auto_retries, task.max_retries),
        outcome.ending,
        now=now,
        policy=policy,
        rng=rng,
        error=outcome.error,
        requested_delay=outcome.retry_delay,
    )


def changes_of(settlement: Settlement, now: datetime) -> TaskChanges:
    """The columns a settled run sets."""
    changes: TaskChanges = {
        "status": settlement.to,
        "lease_until": None,
        "updated_at": now,
        "retry_count": settlement.retry_count,
        "auto_retries": settlement.auto_retries,
    }
    if settlement.sets_error:
        changes["error_message"] = settlement.error
    if settlement.available_at is not None:
        changes["available_at"] = settlement.available_at
        changes["worker_id"] = None
    if settlement.finished:
        changes["completed_at"] = now
    if settlement.to is TaskStatus.COMPLETED:
        changes["progress"] = 100
    return changes


async def finish(
    uow: UnitOfWork,
    *,
    worker_id: str,
    outcomes: Sequence[Outcome],
    now: datetime,
    policy: RetryPolicy,
    rng: random.Random,
) -> list[TaskRecord]:
    """Record how runs ended; tasks this worker no longer holds (lease lost) are left alone.

    Raises StaleOutcomes (the caller rolls back) when an outcome's task is held again by this
    worker, in a later attempt: it was handed back (lease expired while the outcome waited for
    the database) and claimed anew, and the old run must not finish the new one.
    """
    repo = TaskRepository(uow.session)
    await repo.indexes_only()  # every row it touches is found by key
    settled = {o.task.id: (o, _settle(o, now, policy, rng)) for o in outcomes}
    # Plain completions share their final changes: one UPDATE for all of them.
    plain = [i for i, (o, s) in settled.items() if s.to is TaskStatus.COMPLETED and not o.final]
    finished: list[TaskRecord] = []
    if plain:
        first = settled[plain[0]]
        finished.extend(await repo.finish_owned(plain, worker_id, changes_of(first[1], now)))
    done_together = set(plain)  # a set: hundreds of outcomes per finish (a list made it O(n²))
    for task_id, (o, s) in settled.items():
        if task_id not in done_together:
            changes: TaskChanges = {**changes_of(s, now), **(o.final or {})}
            finished.extend(await repo.finish_owned([task_id], worker_id, changes))
    stale = [t.id for t in finished if t.attempts != settled[t.id][0].task.attempts]
    if stale:
        raise StaleOutcomes(stale)
    changes_made, attempt_rows = [], []
    for task in finished:
        o, s = settled[task.id]
        changes_made.append(
            history.Change(task, s.event, TaskStatus.PROCESSING, actor=worker_id, message=s.message)
        )
        attempt_rows.append(
            {
                "task_id": task.id,
                "attempt": o.task.attempts,
                "outcome": s.attempt.value,
                "error": o.error,
                "finished_at": now,
                "duration_ms": int((now - o.started_at).total_seconds() * 1000),
            }
        )
    await history.record(uow, changes_made, now=now)
    await HistoryRepository(uow.session).finish_attempts(attempt_rows)
    await notifications.on_endings(uow, finished, now=now)
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
    uow: UnitOfWork,
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
    held = await TaskRepository(uow.session).extend_leases(
        task_ids, worker_id, now + timedelta(seconds=lease_seconds)
    )
    return {task_id: Lease(attempt, cancel) for task_id, attempt, cancel in held}


async def expire_leases(
    uow: UnitOfWork,
    *,
    now: datetime,
    policy: RetryPolicy,
    rng: random.Random,
    limit: int = 200,
) -> list[TaskRecord]:
    """Hand back tasks whose worker stopped heartbeating: retry with backoff, or fail."""
    repo = TaskRepository(uow.session)
    await repo.indexes_only()  # expired leases by ix_tasks_lease, the rest by key
    attempts = HistoryRepository(uow.session)
    changes, attempt_rows, moved = [], [], []
    for task in await repo.expired_leases(now, limit):
        error = f"lease expired: worker {task.worker_id} stopped heartbeating"
        budget = Budget(task.retry_count, task.auto_retries, task.max_retries)
        settled = settle(budget, Ending.LEASE_EXPIRED, now=now, policy=policy, rng=rng, error=error)
        after = await repo.update_where(task.id, [TaskStatus.PROCESSING], changes_of(settled, now))
        if after is None:
            continue
        moved.append(after)
        changes.append(
            history.Change(
                after,
                settled.event,
                TaskStatus.PROCESSING,
                actor="detect-timeouts",
                message=settled.message,
            )
        )
        started = await attempts.attempt_started_at(task.id, task.attempts)
        attempt_rows.append(
            {
                "task_id": task.id,
                "attempt": task.attempts,
                "outcome": settled.attempt.value,
                "error": error,
                "finished_at": now,
                "duration_ms": int((now - started).total_seconds() * 1000) if started else None,
            }
        )
    await history.record(uow, changes, now=now)
    await attempts.finish_attempts(attempt_rows)
    await notifications.on_endings(uow, moved, now=now)
    return moved


async def promote_due(uow: UnitOfWork, *, now: datetime, limit: int = 500) -> list[TaskRecord]:
    """Scheduled tasks whose time has come become pending (and ring the workers' doorbell)."""
    repo = TaskRepository(uow.session)
    await repo.indexes_only()  # due tasks by ix_tasks_due, the rest by key
    changes = []
    due = transitions.transition(TaskStatus.SCHEDULED, TaskStatus.PENDING)
    for task in await repo.due_scheduled(now, limit):
        after = await repo.update_where(
            task.id, [TaskStatus.SCHEDULED], {"status": TaskStatus.PENDING, "updated_at": now}
        )
        if after is not None:
            changes.append(
                history.Change(
                    after,
                    due,
                    TaskStatus.SCHEDULED,
                    actor="process-scheduled",
                    message="scheduled time reached",
                )
            )
    await history.record(uow, changes, now=now)
    return [c.task for c in changes]
