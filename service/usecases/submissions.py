"""A task as a caller submits it: checked by the catalog, stored, and given its upload URL."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NotRequired, TypedDict, Unpack

from service.catalog.catalog import Catalog
from service.db.unit_of_work import UnitOfWork, Units
from service.domain.callers import Caller
from service.domain.errors import Forbidden, InvalidInput, OperationsError
from service.domain.tasks import TaskRecord
from service.storage.base import FileStore
from service.telemetry import tracing
from service.usecases import tasks as task_usecases
from service.usecases.files import FilePolicy
from service.usecases.group_commit import GroupCommit
from service.usecases.tasks import IdempotencyKey, NewTask
from service.usecases.uploads import creation, receipt
from service.usecases.uploads.creation import Upload


@dataclass(frozen=True, slots=True)
class Submitted:
    """The task (new, or the first one of a repeated Idempotency-Key), its input upload (when
    created with a fileName and still waiting for the bytes) and whether it is new."""

    task: TaskRecord
    upload: Upload | None
    created: bool


class Intake(TypedDict):
    """The keyword arguments of `submit`, which the other ways in pass on to it."""

    catalog: Catalog
    store: FileStore
    policy: FilePolicy
    now: datetime
    idempotency: NotRequired[IdempotencyKey | None]
    traceparent: NotRequired[str | None]


@tracing.traced("submissions.submit_one")
async def submit_one(
    units: Units,
    caller: Caller,
    new: NewTask,
    *,
    group: GroupCommit | None = None,
    **intake: Unpack[Intake],
) -> Submitted:
    """POST /tasks and CreateTask: committed before this returns.

    A plain task (no key, no file) goes through `group`, when given: it is committed with the
    creates that arrived with it (its trace rides on the task), and needs no transaction of its
    own. Any other is submitted in a unit of work of its own.
    """
    keyed = intake.get("idempotency") is not None
    plain = not keyed and new.file_name is None and new.input_file_id is None
    if group is not None and plain:
        now = intake["now"]
        traceparent = intake.get("traceparent")
        task = task_usecases.prepare(
            caller, new, catalog=intake["catalog"], now=now, traceparent=traceparent
        )
        await group.store(task, now=now)
        return Submitted(task, None, True)
    async with units() as uow:
        return await submit(uow, caller, new, **intake)


@tracing.traced("submissions.submit")
async def submit(
    uow: UnitOfWork,
    caller: Caller,
    new: NewTask,
    *,
    catalog: Catalog,
    store: FileStore,
    policy: FilePolicy,
    now: datetime,
    idempotency: IdempotencyKey | None = None,
    traceparent: str | None = None,
) -> Submitted:
    """Create a task as POST /tasks, /bulk/import and /bulk/export do, in `uow`: an inputFileId
    must be one of the caller's files; a fileName gets an upload URL (the task waits for the
    bytes)."""
    if new.input_file_id is not None:
        await creation.check_input(uow, caller, new.input_file_id)
    task, created = await task_usecases.create(
        uow,
        caller,
        new,
        catalog=catalog,
        now=now,
        idempotency=idempotency,
        traceparent=traceparent,
    )
    task, upload = await creation.upload_for_task(
        uow,
        store,
        caller,
        task,
        content_type=new.file_content_type,
        sha256=new.file_sha256,
        policy=policy,
        now=now,
    )
    return Submitted(task, upload, created)


@tracing.traced("submissions.submit_with_file")
async def submit_with_file(
    units: Units,
    caller: Caller,
    new: NewTask,
    chunks: AsyncIterator[bytes],
    *,
    catalog: Catalog,
    store: FileStore,
    policy: FilePolicy,
    clock: receipt.Clock,
    idempotency: IdempotencyKey | None = None,
) -> Submitted:
    """A task created together with its input file's bytes (a multipart import).

    The task and its pending file are committed first; the bytes are then received as a
    signed PUT's are (service/usecases/uploads/receipt.py): no transaction open while they are
    stored, and one upload of a file at a time, so a repeat of the Idempotency-Key while the
    first request's bytes are being stored is a 409. Marking the file ready sends the task to
    the workers. If storing fails the task keeps waiting: repeating the request with the same
    Idempotency-Key stores the file again, and otherwise check-uploads expires the task.
    """
    async with units() as uow:
        first = await submit(
            uow,
            caller,
            new,
            catalog=catalog,
            store=store,
            policy=policy,
            now=clock(),
            idempotency=idempotency,
        )
    if first.upload is not None:
        with contextlib.suppress(receipt.AlreadyUploaded):  # a repeat: the file is there
            await receipt.receive(
                units,
                store,
                first.upload.file.id,
                chunks,
                policy=policy,
                clock=clock,
                actor=caller,
            )
    async with units() as uow:
        task = await task_usecases.get(uow, caller, first.task.id)
    return Submitted(task, None, first.created)


#: Most tasks one batch create may hold (its body limit bounds it too).
MAX_BATCH = 1000


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One task of a batch: created, or refused with the error a single create would raise."""

    index: int
    task: TaskRecord | None = None
    error: OperationsError | None = None


@tracing.traced("submissions.submit_batch")
async def submit_batch(
    uow: UnitOfWork,
    caller: Caller,
    news: Sequence[NewTask],
    *,
    catalog: Catalog,
    now: datetime,
) -> list[BatchItem]:
    """Many tasks in one transaction: each checked as a single create would be; those that
    pass are stored together (one multi-row statement per table), the others are reported
    with their error and nothing of theirs is written."""
    items: list[BatchItem] = []
    for index, new in enumerate(news):
        try:
            if new.file_name is not None:  # an upload URL per task is not a batch's answer
                raise InvalidInput("create a task with a fileName alone", field="fileName")
            if new.input_file_id is not None:
                await creation.check_input(uow, caller, new.input_file_id)
            task = task_usecases.prepare(caller, new, catalog=catalog, now=now)
        except (InvalidInput, Forbidden) as error:
            items.append(BatchItem(index, error=error))
            continue
        items.append(BatchItem(index, task=task))
    await task_usecases.store(uow, [i.task for i in items if i.task is not None], now=now)
    return items
