"""Bytes arrived for a pending file: refused, or the file marked ready and its task released."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from service.db.repositories.files import FileRecord, FileRepository
from service.db.repositories.tasks import TaskRepository
from service.db.unit_of_work import UnitOfWork
from service.domain import transitions
from service.domain.callers import Caller
from service.domain.errors import InvalidInput
from service.domain.tasks import TaskStatus
from service.storage.base import FileStore, FileTooLarge, digest
from service.usecases import files as file_usecases, history
from service.usecases.files import FilePolicy, FilePurpose, FileStatus, FileView


@dataclass(frozen=True, slots=True)
class Arrival:
    """Bytes stored for a pending file: their size and, unless that size is refused anyway,
    their SHA-256."""

    size: int
    sha256: str | None


async def arrived(store: FileStore, row: FileRecord, policy: FilePolicy) -> Arrival:
    """What is stored for the pending file `row` (an upload straight to S3), read back once in
    a thread and hashed; ObjectNotFound when nothing is."""
    size = await asyncio.to_thread(store.size, row.key)
    if refusal(row, size, None, policy) is not None:  # refused bytes are not worth reading
        return Arrival(size, None)
    stored = await asyncio.to_thread(digest, store, row.key)
    return Arrival(stored.size, stored.sha256)


def refusal(
    row: FileRecord, size: int, sha256: str | None, policy: FilePolicy
) -> InvalidInput | None:
    """Why uploaded bytes cannot be the pending file `row`: too large (413), or not the size
    or SHA-256 the client announced (422); None when they can."""
    if size > policy.max_bytes:
        return FileTooLarge.over(policy.max_bytes, size=size, field="size")
    if row.size is not None and size != row.size:
        return InvalidInput(
            f"the upload has {size} bytes but {row.size} were announced",
            field="size",
        )
    if sha256 is not None and row.sha256 is not None and sha256 != row.sha256:
        return InvalidInput(
            f"the upload's SHA-256 is {sha256} but {row.sha256} was announced",
            field="sha256",
        )
    return None


async def mark_uploaded(
    uow: UnitOfWork,
    store: FileStore,
    row: FileRecord,
    size: int,
    *,
    sha256: str | None,
    policy: FilePolicy,
    now: datetime,
    actor: Caller | None = None,
) -> FileView:
    """Mark a pending file ready after its bytes (`size`, `sha256`: hashed as they came
    through the service, or read back by `arrived`) are stored, and start the task that waited
    for it. Bytes refused by `refusal` are deleted: the upload can be repeated.
    """
    problem = refusal(row, size, sha256, policy)
    if problem is not None:
        await asyncio.to_thread(store.delete, row.key)
        raise problem
    values = {"status": FileStatus.READY.value, "size": size, "sha256": sha256}
    updated = await FileRepository(uow.session).update_where(
        row.id, FileStatus.PENDING.value, values
    )
    if updated is None:  # a concurrent upload of the same file marked it first
        return file_usecases.to_view(await file_usecases.stored(uow, row.id))
    await release_task(uow, updated, actor or Caller(row.owner), now=now)
    return file_usecases.to_view(updated)


async def release_task(uow: UnitOfWork, file: FileRecord, actor: Caller, *, now: datetime) -> None:
    """A task waiting for its input `file` (now ready) becomes pending, with the file's size as
    its fileSize: the work trigger goes out with it. Nothing for a file that is no task's input."""
    task_id = file.task_id
    if file.purpose != FilePurpose.INPUT or task_id is None:
        return
    current = await TaskRepository(uow.session).get(task_id)
    if current is None or current.status != TaskStatus.WAITING:
        return
    event = transitions.transition(TaskStatus.WAITING, TaskStatus.PENDING)
    task = await TaskRepository(uow.session).update_where(
        task_id,
        [TaskStatus.WAITING],
        {
            "status": TaskStatus.PENDING,
            "file_size": file.size,
            "available_at": now,
            "updated_at": now,
        },
    )
    if task is None:
        return  # cancelled meanwhile
    change = history.Change(
        task, event, TaskStatus.WAITING, actor=actor.user_id, message="input file uploaded"
    )
    await history.record(uow, [change], now=now)
