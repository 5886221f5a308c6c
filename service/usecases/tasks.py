"""Task use cases shared by the API and the worker: create, read, cancel, retry, delete."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncSession

from service.catalog.catalog import Catalog
from service.catalog.model import Submission
from service.db.repositories.idempotency import IdempotencyRecord, IdempotencyRepository
from service.db.repositories.outbox import OutboxRepository
from service.db.repositories.tasks import TaskRepository
from service.domain import transitions
from service.domain.callers import Caller
from service.domain.errors import Conflict, IdempotencyMismatch, IllegalTransition, NotFound
from service.domain.events import EventType
from service.domain.tasks import Priority, Queue, TaskStatus
from service.usecases import files as file_usecases, history
from service.usecases.views import TaskView


@dataclass(frozen=True, slots=True)
class NewTask:
    """What a caller asks for; its shape is checked at the edge, its meaning by the catalog."""

    task_type: str
    entity_type: str | None = None
    #: None: the task type's default priority
    priority: Priority | None = None
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
        """SHA-256 of the request: a repeated Idempotency-Key must come with the same one."""
        raw = json.dumps(asdict(self), sort_keys=True, default=str).encode()
        return hashlib.sha256(raw).hexdigest()

    def submission(self) -> Submission:
        return Submission(
            task_type=self.task_type,
            entity_type=self.entity_type,
            params=self.params,
            file_name=self.file_name,
            has_input=self.input_file_id is not None,
        )


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """An Idempotency-Key header's value and the operation it was sent to."""

    key: str
    operation: str


def _check_file_type(new: NewTask) -> None:
    """A file the task reads, uploaded later, must be of a type it reads (415 otherwise)."""
    if new.file_name is not None and new.input_file_id is None:
        content_type = file_usecases.content_type_of(new.file_name, new.file_content_type)
        file_usecases.check_import_type(content_type, field="fileContentType")


def _first_status(new: NewTask, now: datetime) -> TaskStatus:
    """Waiting for its file, scheduled for later, or ready to run."""
    if new.file_name is not None and new.input_file_id is None:
        return TaskStatus.WAITING
    if new.scheduled_at is not None and new.scheduled_at > now:
        return TaskStatus.SCHEDULED
    return TaskStatus.PENDING


async def create(
    session: AsyncSession,
    caller: Caller,
    new: NewTask,
    *,
    catalog: Catalog,
    now: datetime,
    idempotency: IdempotencyKey | None = None,
    traceparent: str | None = None,
) -> tuple[TaskView, bool]:
    """Create a task: pending; scheduled when scheduledAt is in the future; waiting when it
    names a fileName to be uploaded (it never starts before its input file is complete).

    The catalog decides first: an unknown type or bad params are a 422 naming the field, a
    type the caller may not create a 403, and nothing is written. Returns (task, created): a
    repeated Idempotency-Key returns the first task unchanged.
    """
    fingerprint = new.fingerprint()
    keys = IdempotencyRepository(session)
    if idempotency is not None:
        known = await keys.find(caller.user_id, idempotency.operation, idempotency.key)
        if known is not None:
            return await _replayed(session, known, fingerprint), False
    task_type = catalog.check(caller, new.submission())
    if task_type.needs_file:
        _check_file_type(new)
    status = _first_status(new, now)
    priority = task_type.priority if new.priority is None else new.priority
    task_id = uuid4()
    if idempotency is not None:
        record = IdempotencyRecord(
            caller.user_id, idempotency.operation, idempotency.key, fingerprint, task_id, now
        )
        if not await keys.claim(record):  # a concurrent request with this key came first
            known = await keys.find(caller.user_id, idempotency.operation, idempotency.key)
            if known is None:
                raise Conflict("a request with this Idempotency-Key is still in progress")
            return await _replayed(session, known, fingerprint), False
    repo = TaskRepository(session)
    row = repo.new_row(
        {
            "id": task_id,
            "task_type": new.task_type,
            "entity_type": new.entity_type,
            "status": status.value,
            "priority": int(priority),
            "queue": (new.queue or task_type.queue_for(priority)).value,
            "requested_by": caller.user_id,
            "params": new.params,
            "file_name": new.file_name,
            "file_size": new.file_size,
            "input_file_id": new.input_file_id,
            "scheduled_at": new.scheduled_at,
            "available_at": new.scheduled_at if status is TaskStatus.SCHEDULED else now,
            "max_retries": (
                catalog.max_retries(new.task_type) if new.max_retries is None else new.max_retries
            ),
            "idempotency_key": None if idempotency is None else idempotency.key,
            "template_id": new.template_id,
            "created_at": now,
            "updated_at": now,
        }
    )
    # The row is known before it is written (no RETURNING), so the task and its event row go
    # out together (one statement on PostgreSQL, see insert_created), then the outbox row.
    task = TaskView.from_row(row)
    event = transitions.creation_event(status)
    change = history.Change(task, event, None, actor=caller.user_id, message="created")
    [event_row], [outbox_row] = history.trail([change], now=now, traceparent=traceparent)
    await repo.insert_created(row, event_row)
    await OutboxRepository(session).add([outbox_row])
    history.note_written(session)
    if status is TaskStatus.PENDING:
        history.note_new_pending(session, task.id)
    return task, True


async def _replayed(session: AsyncSession, known: IdempotencyRecord, fingerprint: str) -> TaskView:
    """The task a key made, for a repeat of the same request; refused for another request."""
    if known.fingerprint and known.fingerprint != fingerprint:
        raise IdempotencyMismatch(
            "this Idempotency-Key was already used with a different request; send a new key",
            task_id=str(known.task_id),
        )
    row = await TaskRepository(session).get(known.task_id, include_deleted=True)
    if row is None or row.deleted_at is not None:  # GET says 404: do not hand the task back
        raise Conflict(
            "the task created with this Idempotency-Key was deleted; send a new key",
            task_id=str(known.task_id),
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
    """Run a failed or cancelled task again: retryCount counts it, as every retry, and the
    task gets its automatic retries (maxRetries) anew."""
    current = await get(session, caller, task_id)
    return await _move(
        session,
        caller,
        task_id,
        TaskStatus.PENDING,
        {
            "available_at": now,
            "retry_count": current.retry_count + 1,
            "auto_retries": 0,
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
