"""Task use cases shared by the API and the worker: create, read, cancel, retry, delete."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from service.catalog.catalog import Catalog
from service.catalog.model import Submission
from service.db.repositories import outbox as outbox_rows
from service.db.repositories.idempotency import IdempotencyRecord, IdempotencyRepository
from service.db.repositories.outbox import NewOutboxRow
from service.db.repositories.tasks import TaskChanges, TaskRepository, insert_created_alone
from service.db.unit_of_work import StatementUnit, UnitOfWork
from service.domain import transitions
from service.domain.callers import Caller
from service.domain.errors import Conflict, IdempotencyMismatch, IllegalTransition, NotFound
from service.domain.events import EventType
from service.domain.tasks import Priority, Queue, TaskRecord, TaskStatus, new_task
from service.telemetry import tracing
from service.usecases import content_types, history, notifications


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
    template_version: int | None = None
    name: str | None = None
    description: str | None = None
    tags: tuple[str, ...] = ()
    schedule_id: str | None = None
    fire_time: datetime | None = None
    #: as stored (NotificationSettings.stored())
    notification_settings: dict[str, Any] | None = None
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
        content_type = content_types.content_type_of(new.file_name, new.file_content_type)
        content_types.check_import_type(content_type, field="fileContentType")


@tracing.traced("tasks.create")
async def create(
    uow: UnitOfWork,
    caller: Caller,
    new: NewTask,
    *,
    catalog: Catalog,
    now: datetime,
    idempotency: IdempotencyKey | None = None,
    traceparent: str | None = None,
) -> tuple[TaskRecord, bool]:
    """Create a task: pending; scheduled when scheduledAt is in the future; waiting when it
    names a fileName to be uploaded (it never starts before its input file is complete).

    The catalog decides first: an unknown type or bad params are a 422 naming the field, a
    type the caller may not create a 403, and nothing is written. Returns (task, created): a
    repeated Idempotency-Key returns the first task unchanged.
    """
    fingerprint = new.fingerprint()
    keys = IdempotencyRepository(uow.session)
    if idempotency is not None:
        known = await keys.find(caller.user_id, idempotency.operation, idempotency.key)
        if known is not None:
            return await _replayed(uow, known, fingerprint), False
    task = prepare(
        caller,
        new,
        catalog=catalog,
        now=now,
        idempotency_key=None if idempotency is None else idempotency.key,
        traceparent=traceparent,
    )
    if idempotency is not None:
        record = IdempotencyRecord(
            caller.user_id, idempotency.operation, idempotency.key, fingerprint, task.id, now
        )
        if not await keys.claim(record):  # a concurrent request with this key came first
            known = await keys.find(caller.user_id, idempotency.operation, idempotency.key)
            if known is None:
                raise Conflict("a request with this Idempotency-Key is still in progress")
            return await _replayed(uow, known, fingerprint), False
    await store(uow, [task], now=now, traceparent=traceparent)
    return task, True


def prepare(
    caller: Caller,
    new: NewTask,
    *,
    catalog: Catalog,
    now: datetime,
    idempotency_key: str | None = None,
    traceparent: str | None = None,
) -> TaskRecord:
    """The task a create would store, checked by the catalog (a 422 naming the field, or a 403
    for a type the caller may not create); nothing is read or written.

    It keeps the trace it was created in (the current span's, else `traceparent`), so its
    runs continue that trace."""
    task_type = catalog.check(caller, new.submission())
    catalog.check_notifications(new.notification_settings)
    if task_type.needs_file:
        _check_file_type(new)
    status = transitions.initial(
        waits_for_file=new.file_name is not None and new.input_file_id is None,
        run_at=new.scheduled_at,
        now=now,
    )
    priority = task_type.priority if new.priority is None else new.priority
    return new_task(
        task_id=uuid4(),
        task_type=new.task_type,
        entity_type=new.entity_type,
        status=status,
        priority=priority,
        queue=(new.queue or task_type.queue_for(priority)).value,
        requested_by=caller.user_id,
        params=new.params,
        max_retries=(
            catalog.max_retries(new.task_type) if new.max_retries is None else new.max_retries
        ),
        now=now,
        scheduled_at=new.scheduled_at,
        file_name=new.file_name,
        file_size=new.file_size,
        input_file_id=new.input_file_id,
        idempotency_key=idempotency_key,
        template_id=new.template_id,
        template_version=new.template_version,
        name=new.name,
        description=new.description,
        tags=list(new.tags),
        schedule_id=new.schedule_id,
        fire_time=new.fire_time,
        notification_settings=new.notification_settings,
        traceparent=tracing.current_traceparent() or traceparent,
    )


async def store(
    uow: UnitOfWork,
    tasks: Sequence[TaskRecord],
    *,
    now: datetime,
    traceparent: str | None = None,
) -> None:
    """Write prepared tasks with their first event and outbox row, in the unit's transaction.

    Every value written is known beforehand (only the outbox ids are read back): one task goes
    out in one statement on PostgreSQL, many tasks in one multi-row statement per table.
    """
    if not tasks:
        return
    events, outbox = _created_trail(tasks, now=now, traceparent=traceparent)
    repo = TaskRepository(uow.session)
    if len(tasks) == 1:  # one statement on PostgreSQL
        uow.facts.outbox.append(await repo.insert_created(tasks[0], events[0], outbox[0]))
    else:  # one statement on PostgreSQL too
        uow.facts.outbox.extend(await repo.insert_created_many(tasks, events, outbox))
    history.note_ready(uow, tasks, now=now)


async def store_alone(
    unit: StatementUnit,
    tasks: Sequence[TaskRecord],
    *,
    now: datetime,
    settled: Sequence[int] = (),
) -> None:
    """`store` as one statement that commits itself (PostgreSQL): the group commit's write,
    without the round trips and the ORM session of a transaction of its own.

    Its outbox rows are claimed by this process: its relay, handed them after the commit,
    publishes them without the relay lock's transaction (service/events/relay.py). The same
    statement marks published the claimed rows `settled` (those the relay sent meanwhile).
    """
    if not tasks:
        return
    claimed_until = now + timedelta(seconds=outbox_rows.CLAIM_SECONDS)
    events, outbox = _created_trail(tasks, now=now, traceparent=None, claimed_until=claimed_until)
    unit.facts.outbox.extend(
        await insert_created_alone(unit.connection, tasks, events, outbox, settled=settled, now=now)
    )
    history.note_ready(unit, tasks, now=now)


def _created_trail(
    tasks: Sequence[TaskRecord],
    *,
    now: datetime,
    traceparent: str | None,
    claimed_until: datetime | None = None,
) -> tuple[list[dict[str, Any]], list[NewOutboxRow]]:
    """New tasks' first event rows and outbox rows (the creation event their status calls for)."""
    changes = [
        history.Change(
            t, transitions.creation_event(t.status), None, actor=t.requested_by, message="created"
        )
        for t in tasks
    ]
    return history.trail(
        changes, now=now, traceparent=traceparent, opens=True, claimed_until=claimed_until
    )


async def _replayed(uow: UnitOfWork, known: IdempotencyRecord, fingerprint: str) -> TaskRecord:
    """The task a key made, for a repeat of the same request; refused for another request."""
    if known.fingerprint and known.fingerprint != fingerprint:
        raise IdempotencyMismatch(
            "this Idempotency-Key was already used with a different request; send a new key",
            task_id=str(known.task_id),
        )
    task = await TaskRepository(uow.session).get(known.task_id, include_deleted=True)
    if task is None or task.deleted_at is not None:  # GET says 404: do not hand the task back
        raise Conflict(
            "the task created with this Idempotency-Key was deleted; send a new key",
            task_id=str(known.task_id),
        )
    return task


@tracing.traced("tasks.get")
async def get(uow: UnitOfWork, caller: Caller, task_id: UUID) -> TaskRecord:
    """One task the caller may see; another user's task is reported as not found."""
    task = await TaskRepository(uow.session).get(task_id)
    if task is None or not caller.may_see(task.requested_by):
        raise NotFound(f"task {task_id} not found", task_id=str(task_id))
    return task


async def _move(
    uow: UnitOfWork,
    caller: Caller,
    current: TaskRecord,
    to: TaskStatus,
    changes: TaskChanges,
    *,
    now: datetime,
    message: str,
) -> TaskRecord:
    """A person's change of a task's status, checked by the state machine, with its trail."""
    event = transitions.transition(current.status, to)
    task = await TaskRepository(uow.session).update_where(
        current.id, [current.status], {"status": to, "updated_at": now, **changes}
    )
    if task is None:
        raise Conflict(f"task {current.id} changed while this request ran; try again")
    change = history.Change(task, event, current.status, actor=caller.user_id, message=message)
    await history.record(uow, [change], now=now)
    await notifications.on_endings(uow, [task], now=now)
    return task


@tracing.traced("tasks.cancel")
async def cancel(uow: UnitOfWork, caller: Caller, task_id: UUID, *, now: datetime) -> TaskRecord:
    """Cancel at once when not running; ask the running handler to stop otherwise."""
    current = await get(uow, caller, task_id)
    if current.status is not TaskStatus.PROCESSING:
        return await _move(
            uow,
            caller,
            current,
            TaskStatus.CANCELLED,
            {"completed_at": now, "lease_until": None},
            now=now,
            message="cancelled by request",
        )
    if current.cancel_requested:
        return current
    task = await TaskRepository(uow.session).update_where(
        task_id, [TaskStatus.PROCESSING], {"cancel_requested": True, "updated_at": now}
    )
    if task is None:  # it finished meanwhile: cancel what is there now, or refuse
        return await cancel(uow, caller, task_id, now=now)
    change = history.Change(
        task,
        EventType.CANCEL_REQUESTED,
        current.status,
        actor=caller.user_id,
        message="cancel requested; the running handler stops at its next progress report",
    )
    await history.record(uow, [change], now=now)
    return task


#: A person's retry: the state machine also allows scheduled -> pending and processing ->
#: pending (a worker's moves); a retry must not start a scheduled task early or a running one
#: twice.
RETRYABLE = frozenset({TaskStatus.FAILED, TaskStatus.CANCELLED})


@tracing.traced("tasks.retry")
async def retry(uow: UnitOfWork, caller: Caller, task_id: UUID, *, now: datetime) -> TaskRecord:
    """Run a failed or cancelled task again: retryCount counts it, as every retry, and the
    task gets its automatic retries (maxRetries) anew."""
    current = await get(uow, caller, task_id)
    if current.status not in RETRYABLE:
        raise IllegalTransition(
            f"a {current.status.value} task cannot be retried; only failed or cancelled tasks can",
            current=current.status.value,
            target=TaskStatus.PENDING.value,
        )
    return await _move(
        uow,
        caller,
        current,
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
    )


@tracing.traced("tasks.delete")
async def delete(uow: UnitOfWork, caller: Caller, task_id: UUID, *, now: datetime) -> None:
    """Soft-delete a task that is not running."""
    current = await get(uow, caller, task_id)
    if current.status is TaskStatus.PROCESSING:
        raise Conflict("a processing task cannot be deleted; cancel it first")
    task = await TaskRepository(uow.session).update_where(
        task_id, [current.status], {"deleted_at": now, "updated_at": now}
    )
    if task is None:
        raise Conflict(f"task {task_id} changed while this request ran; try again")
    change = history.Change(
        task, EventType.DELETED, current.status, actor=caller.user_id, message="deleted"
    )
    await history.record(uow, [change], now=now)
