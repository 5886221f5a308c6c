"""Bytes PUT straight to the store (S3) bypass the service: the client confirms them, for a
file (POST /files/{id}/complete) or for the task waiting for it (POST /tasks/{id}/submit)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from service.db.unit_of_work import UnitOfWork
from service.domain.callers import Caller
from service.domain.errors import Conflict
from service.domain.tasks import TaskRecord, TaskStatus
from service.storage.base import FileStore, ObjectNotFound
from service.usecases import files as file_usecases, tasks as task_usecases
from service.usecases.files import FilePolicy, FileStatus, FileView
from service.usecases.uploads import arrival, creation


async def complete_upload(
    uow: UnitOfWork,
    store: FileStore,
    caller: Caller,
    file_id: UUID,
    *,
    policy: FilePolicy,
    now: datetime,
) -> FileView:
    """Check that the bytes arrived (uploads to S3 bypass the API) and mark the file ready.

    Ends the caller's transaction, which has only read so far, before the bytes are read back
    and hashed: on SQLite it would hold the database's write lock, on PostgreSQL a connection,
    for as long as that read takes. The file is then marked in a new transaction, only if it
    is still pending.
    """
    row = await file_usecases.visible(uow, caller, file_id)
    if row.status == FileStatus.READY:
        return file_usecases.to_view(row)
    await uow.commit()  # a read so far: end it before reading the bytes back
    try:
        found = await arrival.arrived(store, row, policy)
    except ObjectNotFound as error:
        raise Conflict(f"file {file_id} has not been uploaded yet", file_id=str(file_id)) from error
    return await arrival.mark_uploaded(
        uow, store, row, found.size, sha256=found.sha256, policy=policy, now=now, actor=caller
    )


async def submit(
    uow: UnitOfWork,
    store: FileStore,
    caller: Caller,
    task_id: UUID,
    *,
    policy: FilePolicy,
    now: datetime,
) -> TaskRecord:
    """The client says its upload is done: check the bytes are there and let the task run.

    Repeating it once the task runs is harmless (the task is returned as it is).
    """
    task = await task_usecases.get(uow, caller, task_id)
    row = await creation.own_input(uow, task)
    if row is None:
        raise Conflict(f"task {task_id} has no input file to submit; create it with a fileName")
    if task.status is not TaskStatus.WAITING:
        if row.status == FileStatus.READY:
            return task
        raise Conflict(
            f"task {task_id} is {task.status.value}; only a waiting task can be submitted",
            current=task.status.value,
        )
    await complete_upload(uow, store, caller, row.id, policy=policy, now=now)
    return await task_usecases.get(uow, caller, task_id)
