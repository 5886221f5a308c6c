"""Task use cases shared by the API and the worker: create, read, cancel, retry, delete."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from service.bulk import params as bulk_params
from service.db.repositories.outbox import OutboxRepository
from service.db.repositories.tasks import TaskRepository
from service.domain import transitions
from service.domain.callers import Caller
from service.domain.errors import Conflict, IdempotencyMismatch, IllegalTransition, NotFound
from service.domain.events import EventType
from service.domain.tasks import Priority, Queue, TaskStatus, queue_for
from service.usecases import files as file_usecases, history
from service.usecases.views import TaskView


@dataclass(frozen=True, slots=True)
class NewTask:
    """What a caller asks for; validated at the edge."""

    task_type: str
    entity_type: str | None = None
    priority: Priority = Priority.NORMAL
    queue: Queue | None = None
    params: dict[str, Any] = field(default_factory=dict)
    file_name: str | None = None
    file_size: int | None = None
    input_file_id: str | None = None
    scheduled_at: datetime | None = None
    max_retries: int | None = None
    template_id: str | None = None
    file_content_type: str | None = None
    file_sha256: str | None = None

    def fingerprint(self) -> str:
        fields = asdict(self)
        for late in ("file_content_type", "file_sha256"):  # unset, they hash as before they
            if fields[late] is None:  # existed: an Idempotency-Key replay across the upgrade
                del fields[late]
        raw = json.dumps(fields, sort_keys=True, default=str).encode()
        return hashlib.sha256(raw).hexdigest()


def _check_import(new: NewTask) -> None:
    bulk_params.check_import(
        new.entity_type,
        new.params,
        file_name=new.file_name,
        has_input=new.input_file_id is not None,
    )
    if new.file_name is not None and new.input_file_id is None:
        content_type = file_usecases.content_type_of(new.file_name, new.file_content_type)
        file_usecases.check_import_type(content_type, field="fileContentType")


def _check_export(new: NewTask) -> None:
    bulk_params.check_export(new.entity_type, new.params)


#: What a task type requires of a new task beyond the API's shape checks: a 422 at creation
#: instead of a task that fails once a worker reads it.
CHECKS: dict[str, Callable[[NewTask], None]] = {"import": _check_import, "export": _check_export}


async def create(
    session: AsyncSession,
    caller: Caller,
    new: NewTask,
    *,
    now: datetime,
    default_max_retries: int,
    idempotency_key: str | None = None,
    traceparent: str | None = None,
) -> tuple[TaskView, bool]:
    """Create a task: pending; scheduled when scheduledAt is in the future; waiting when it
    names a fileName to be uploaded (it never starts before its input file is complete).

    Returns (task, created). A repeated Idempotency-Key returns the first task unchanged.
    """
    repo = TaskRepository(session)
    fingerprint = new.fingerprint()
    if idempotency_key is not None:
        existing = await repo.find_by_idempotency_key(caller.user_id, idempotency_key)
        if existing is not None:
            return _replayed(existing, fingerprint), False
    check = CHECKS.get(new.task_type)
    if check is not None:
        check(new)
    waiting = new.file_name is not None and new.input_file_id is None
    scheduled = not waiting and new.scheduled_at is not None and new.scheduled_at > now
    status = (
        TaskStatus.WAITING if waiting else TaskStatus.SCHEDULED if scheduled else TaskStatus.PENDING
    )
    values = {
        "id": uuid4(),
        "task_type": new.task_type,
        "entity_type": new.entity_type,
        "status": status.value,
        "priority": int(new.priority),
        "queue": (new.queue or queue_for(new.task_type, new.priority)).value,
        "requested_by": caller.user_id,
        "params": new.params,
        "file_name": new.file_name,
        "file_size": new.file_size,
        "input_file_id": new.input_file_id,
        "scheduled_at": new.scheduled_at,
        "available_at": new.scheduled_at if scheduled else now,
        "max_retries": default_max_retries if new.max_retries is None else new.max_retries,
        "idempotency_key": idempotency_key,
        "request_hash": fingerprint if idempotency_key else None,
        "template_id": new.template_id,
        "created_at": now,
        "updated_at": now,
    }
    # The row is known before it is written (no RETURNING), so the task and its event row go
    # out together (one statement on PostgreSQL, see insert_created), then the outbox row.
    row = repo.new_row(values)
    task = TaskView.from_row(row)
    event = {
        TaskStatus.WAITING: EventType.WAITING,
        TaskStatus.SCHEDULED: EventType.SCHEDULED,
    }.get(status, EventType.CREATED)
    change = history.Change(task, event, None, actor=caller.user_id, message="created")
    [event_row], [outbox_row] = history.trail([change], now=now, traceparent=traceparent)
    if idempotency_key is None:
        await repo.insert_created(row, event_row)
        await OutboxRepository(session).add([outbox_row])
    else:
        try:
            async with session.begin_nested():
                await repo.insert_created(row, event_row)
                await OutboxRepository(session).add([outbox_row])
        except IntegrityError:  # a concurrent request with the same key won the race
            existing = await repo.find_by_idempotency_key(caller.user_id, idempotency_key)
            if existing is None:
                raise
            return _replayed(existing, fingerprint), False
    history.note_written(session)
    if status is TaskStatus.PENDING:
        history.note_new_pending(session, task.id)
    return task, True


def _replayed(row: Any, fingerprint: str) -> TaskView:
    if row.deleted_at is not None:  # GET says 404: a replay must not hand the task back
        raise Conflict(
            "the task created with this Idempotency-Key was deleted; send a new key",
            task_id=str(row.id),
        )
    if row.request_hash is not None and row.request_hash != fingerprint:
        raise IdempotencyMismatch(
            "this Idempotency-Key was already used with a different request body",
            task_id=str(row.id),
        )
    return TaskView.from_row(row._mapping)


async def get(session: AsyncSession, caller: Caller, task_id: UUID) -> TaskView:
    """One task the caller may see; another user's task is reported as not found."""
    row = await TaskRepository(session).get(task_id)
    if row is None or not caller.may_see(row.requested_by):
        raise NotFound(f"task {task_id} not found", task_id=str(task_id))
    return TaskView.from_row(row._mapping)


async def _move(
    session: AsyncSession,
    caller: Caller,
    task_id: UUID,
    to: TaskStatus,
    values: dict[str, Any],
    *,
    now: datetime,
    message: str,
    only_from: tuple[frozenset[TaskStatus], str] | None = None,
) -> TaskView:
    current = await get(session, caller, task_id)
    if only_from is not None and current.status not in only_from[0]:
        raise IllegalTransition(
            only_from[1].format(status=current.status.value),
            current=current.status.value,
            target=to.value,
        )
    event = transitions.transition(current.status, to)
    row = await TaskRepository(session).update_where(
        task_id, [current.status], {"status": to.value, "updated_at": now, **values}
    )
    if row is None:
        raise Conflict(f"task {task_id} changed while this request ran; try again")
    task = TaskView.from_row(row._mapping)
    change = history.Change(task, event, current.status, actor=caller.user_id, message=message)
    await history.record(session, [change], now=now)
    return task


async def cancel(
    session: AsyncSession, caller: Caller, task_id: UUID, *, now: datetime
) -> TaskView:
    """Cancel at once when not running; ask the running handler to stop otherwise."""
    current = await get(session, caller, task_id)
    if current.status is not TaskStatus.PROCESSING:
        return await _move(
            session,
            caller,
            task_id,
            TaskStatus.CANCELLED,
            {"completed_at": now, "lease_until": None},
            now=now,
            message="cancelled by request",
        )
    if current.cancel_requested:
        return current
    row = await TaskRepository(session).update_where(
        task_id, [TaskStatus.PROCESSING], {"cancel_requested": True, "updated_at": now}
    )
    if row is None:  # it finished meanwhile: cancel what is there now, or refuse
        return await cancel(session, caller, task_id, now=now)
    task = TaskView.from_row(row._mapping)
    change = history.Change(
        task,
        EventType.CANCEL_REQUESTED,
        current.status,
        actor=caller.user_id,
        message="cancel requested; the running handler stops at its next progress report",
    )
    await history.record(session, [change], now=now)
    return task


async def retry(session: AsyncSession, caller: Caller, task_id: UUID, *, now: datetime) -> TaskView:
    """Run a failed or cancelled task again; a person's retry resets the automatic retry budget."""
    return await _move(
        session,
        caller,
        task_id,
        TaskStatus.PENDING,
        {
            "available_at": now,
            "retry_count": 0,
            "error_message": None,
            "completed_at": None,
            "cancel_requested": False,
            "progress": 0,
            "worker_id": None,
            "lease_until": None,
        },
        now=now,
        message="retried by request",
        # The state machine also allows scheduled -> pending and processing -> pending (a worker's
        # moves); a person's retry must not start a scheduled task early or a running one twice.
        only_from=(
            frozenset({TaskStatus.FAILED, TaskStatus.CANCELLED}),
            "a {status} task cannot be retried; only failed or cancelled tasks can",
        ),
    )


async def delete(session: AsyncSession, caller: Caller, task_id: UUID, *, now: datetime) -> None:
    """Soft-delete a task that is not running."""
    current = await get(session, caller, task_id)
    if current.status is TaskStatus.PROCESSING:
        raise Conflict("a processing task cannot be deleted; cancel it first")
    row = await TaskRepository(session).update_where(
        task_id, [current.status], {"deleted_at": now, "updated_at": now}
    )
    if row is None:
        raise Conflict(f"task {task_id} changed while this request ran; try again")
    task = TaskView.from_row(row._mapping)
    change = history.Change(
        task, EventType.DELETED, current.status, actor=caller.user_id, message="deleted"
    )
    await history.record(session, [change], now=now)
