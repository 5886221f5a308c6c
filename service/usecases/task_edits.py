"""A person's changes to a task that has not started: an edit (PATCH) and run-now."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from service.catalog.catalog import Catalog
from service.catalog.model import Submission
from service.db.repositories.tasks import TaskChanges, TaskRepository
from service.db.unit_of_work import UnitOfWork
from service.domain import transitions
from service.domain.callers import Caller
from service.domain.errors import Conflict, IllegalTransition, PreconditionFailed
from service.domain.events import EventType
from service.domain.tasks import Priority, TaskRecord, TaskStatus
from service.usecases import history, tasks as task_usecases


@dataclass(frozen=True, slots=True)
class TaskEdit:
    """The fields a PATCH sets (`given` names them: a field not given stays as it is; given
    as None, name, description, scheduledAt and notificationSettings are cleared)."""

    given: frozenset[str] = frozenset()
    name: str | None = None
    description: str | None = None
    tags: tuple[str, ...] = ()
    priority: Priority | None = None
    scheduled_at: datetime | None = None
    params: dict[str, Any] = field(default_factory=dict)
    max_retries: int | None = None
    notification_settings: dict[str, Any] | None = None


def _editable(task: TaskRecord, if_match: Collection[int] | None) -> None:
    if if_match is not None and task.version not in if_match:
        raise PreconditionFailed(
            f"task {task.id} is at version {task.version}, not the one If-Match names: "
            "read it again",
            task_id=str(task.id),
        )
    if task.status not in transitions.EDITABLE:
        raise IllegalTransition(
            f"a {task.status.value} task cannot be changed; only scheduled, waiting or pending "
            "tasks can",
            current=task.status.value,
        )


def _changes(
    current: TaskRecord, edit: TaskEdit, *, caller: Caller, catalog: Catalog
) -> TaskChanges:
    """The columns the edit sets; params are checked by the catalog again, with the task's type."""
    changes: TaskChanges = {}
    given = edit.given
    if "name" in given:
        changes["name"] = edit.name
    if "description" in given:
        changes["description"] = edit.description
    if "tags" in given:
        changes["tags"] = list(edit.tags)
    if "notification_settings" in given:
        changes["notification_settings"] = edit.notification_settings
    if "max_retries" in given:
        retries = edit.max_retries
        changes["max_retries"] = (
            catalog.max_retries(current.task_type) if retries is None else retries
        )
    if "params" in given:
        submission = Submission(
            current.task_type,
            current.entity_type,
            edit.params,
            file_name=current.file_name,
            has_input=current.input_file_id is not None,
        )
        catalog.check(caller, submission)
        changes["params"] = edit.params
    task_type = catalog.get(current.task_type)
    if "priority" in given and task_type is not None:
        priority = task_type.priority if edit.priority is None else edit.priority
        changes["priority"] = priority
        if priority is not current.priority:
            changes["queue"] = task_type.queue_for(priority).value
    return changes


def _schedule(current: TaskRecord, edit: TaskEdit, now: datetime) -> TaskChanges:
    """A new scheduledAt decides again between scheduled (due then) and pending (due now)."""
    if "scheduled_at" not in edit.given:
        return {}
    run_at = edit.scheduled_at
    status = transitions.after_edit(current.status, run_at=run_at, now=now)
    changes: TaskChanges = {"scheduled_at": run_at, "status": status}
    if status is TaskStatus.SCHEDULED and run_at is not None:
        changes["available_at"] = run_at
    elif status is TaskStatus.PENDING and current.status is not TaskStatus.PENDING:
        changes["available_at"] = now
    return changes


async def update(
    uow: UnitOfWork,
    caller: Caller,
    task_id: UUID,
    edit: TaskEdit,
    *,
    catalog: Catalog,
    now: datetime,
    if_match: Collection[int] | None = None,
) -> TaskRecord:
    """Change a scheduled, waiting or pending task (409 otherwise; 412 when `if_match` is not
    one of its versions): an `operations.task.updated` event, and when a new scheduledAt moves it
    between scheduled and pending, that status's event too (`created` rings the workers)."""
    current = await task_usecases.get(uow, caller, task_id)
    _editable(current, if_match)
    changes = _changes(current, edit, caller=caller, catalog=catalog)
    changes.update(_schedule(current, edit, now))
    if not changes:
        return current
    task = await TaskRepository(uow.session).update_at_version(
        task_id, current.version, {**changes, "updated_at": now}
    )
    if task is None:
        raise Conflict(f"task {task_id} changed while this request ran; try again")
    names = ", ".join(sorted(edit.given))
    trail = [
        history.Change(
            task,
            EventType.UPDATED,
            current.status,
            actor=caller.user_id,
            message=f"updated: {names}",
        )
    ]
    if task.status is not current.status:
        event = transitions.creation_event(task.status)
        trail.append(
            history.Change(task, event, current.status, actor=caller.user_id, message="rescheduled")
        )
    await history.record(uow, trail, now=now)
    return task


async def run_now(uow: UnitOfWork, caller: Caller, task_id: UUID, *, now: datetime) -> TaskRecord:
    """A scheduled task becomes pending and due now (409 in any other status)."""
    current = await task_usecases.get(uow, caller, task_id)
    if current.status is not TaskStatus.SCHEDULED:
        raise IllegalTransition(
            f"a {current.status.value} task cannot be run now; only scheduled tasks can",
            current=current.status.value,
            target=TaskStatus.PENDING.value,
        )
    event = transitions.transition(current.status, TaskStatus.PENDING)
    task = await TaskRepository(uow.session).update_at_version(
        task_id,
        current.version,
        {"status": TaskStatus.PENDING, "available_at": now, "updated_at": now},
    )
    if task is None:
        raise Conflict(f"task {task_id} changed while this request ran; try again")
    change = history.Change(
        task, event, current.status, actor=caller.user_id, message="run now by request"
    )
    await history.record(uow, [change], now=now)
    return task
