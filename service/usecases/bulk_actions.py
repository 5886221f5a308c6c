"""Bulk cancel / retry / run-now: on chosen tasks or on every task a list filter matches.

Each task is changed by the single action's use case (the same checks, the same event row,
outbox row and actor as one request would leave); tasks the action does not apply to, or that
changed meanwhile, are counted as skipped. A filter's count is bounded (MAX_TASKS): a preview
says how many tasks would be touched, and an action past the bound is refused whole.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID

from service.db.repositories.tasks import TaskFilters, TaskRepository
from service.db.unit_of_work import UnitOfWork
from service.domain import transitions
from service.domain.callers import Caller
from service.domain.errors import Conflict, InvalidInput, OperationsError
from service.domain.tasks import TaskRecord, TaskStatus
from service.usecases import history, tasks as task_usecases

#: the most tasks one bulk action touches
MAX_TASKS = 10_000
#: the most ids one request names
MAX_IDS = 1_000


class BulkAction(enum.StrEnum):
    CANCEL = "cancel"
    RETRY = "retry"
    RUN = "run"


#: the statuses each action applies to
APPLIES_TO: dict[BulkAction, frozenset[TaskStatus]] = {
    BulkAction.CANCEL: frozenset(
        {
            TaskStatus.WAITING,
            TaskStatus.SCHEDULED,
            TaskStatus.PENDING,
            TaskStatus.PROCESSING,
        }
    ),
    BulkAction.RETRY: task_usecases.RETRYABLE,
    BulkAction.RUN: frozenset({TaskStatus.SCHEDULED}),
}


@dataclass(frozen=True, slots=True)
class BulkOutcome:
    action: BulkAction
    #: tasks the selection or filter matched (that the caller may see)
    matched: int
    #: of those, the ones in a status the action applies to
    eligible: int
    #: False for a preview: nothing was changed
    applied: bool
    changed: int = 0
    skipped: int = 0


async def run_now(uow: UnitOfWork, caller: Caller, task_id: UUID, *, now: datetime) -> TaskRecord:
    """Start a scheduled task now instead of at its scheduled time."""
    current = await task_usecases.get(uow, caller, task_id)
    event = transitions.transition(current.status, TaskStatus.PENDING)
    if current.status is not TaskStatus.SCHEDULED:
        raise Conflict(f"a {current.status.value} task is not waiting for its time")
    task = await TaskRepository(uow.session).update_where(
        task_id,
        [TaskStatus.SCHEDULED],
        {"status": TaskStatus.PENDING, "available_at": now, "updated_at": now},
    )
    if task is None:
        raise Conflict(f"task {task_id} changed while this request ran; try again")
    change = history.Change(
        task, event, current.status, actor=caller.user_id, message="run now by request"
    )
    await history.record(uow, [change], now=now)
    return task


async def apply(
    uow: UnitOfWork,
    caller: Caller,
    action: BulkAction,
    *,
    filters: TaskFilters | None = None,
    ids: Sequence[UUID] | None = None,
    preview: bool,
    now: datetime,
) -> BulkOutcome:
    """Count (preview) or act on the tasks `ids` names, or that `filters` match; users reach
    only their own tasks, admins everyone's."""
    if (filters is None) == (ids is None):
        raise InvalidInput("name the tasks (ids) or a filter, one of them", field="ids")
    if ids is not None and len(ids) > MAX_IDS:
        raise InvalidInput(f"at most {MAX_IDS} ids", field="ids")
    scope = filters or TaskFilters()
    if not caller.sees_all:
        scope = replace(scope, owner=caller.user_id)
    repo = TaskRepository(uow.session)
    matched = await repo.count_selected(scope, ids)
    chosen = await repo.selected_ids(scope, ids, APPLIES_TO[action], limit=MAX_TASKS + 1)
    if preview:
        return BulkOutcome(action, matched, len(chosen), applied=False)
    if len(chosen) > MAX_TASKS:
        raise InvalidInput(
            f"more than {MAX_TASKS:,} tasks match; narrow the filter", field="filter"
        )
    changed = skipped = 0
    for task_id in chosen:
        try:
            await _one(uow, caller, action, task_id, now=now)
        except OperationsError:  # changed meanwhile: nothing of it was written
            skipped += 1
        else:
            changed += 1
    return BulkOutcome(action, matched, len(chosen), applied=True, changed=changed, skipped=skipped)


async def _one(
    uow: UnitOfWork, caller: Caller, action: BulkAction, task_id: UUID, *, now: datetime
) -> None:
    if action is BulkAction.CANCEL:
        await task_usecases.cancel(uow, caller, task_id, now=now)
    elif action is BulkAction.RETRY:
        await task_usecases.retry(uow, caller, task_id, now=now)
    else:
        await run_now(uow, caller, task_id, now=now)
