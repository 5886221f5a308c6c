"""A task's files: the input it was created with, and the outputs and reports it wrote."""

from __future__ import annotations

import asyncio
from datetime import datetime
from uuid import UUID, uuid4

from service.db.repositories.files import FileRecord, FileRepository
from service.db.repositories.tasks import TaskChanges, TaskRepository
from service.db.unit_of_work import UnitOfWork
from service.domain.callers import Caller
from service.domain.errors import Conflict, InvalidInput, NotFound
from service.domain.tasks import TaskRecord, TaskStatus
from service.storage.base import FileStore, check_key, digest
from service.usecases import files as file_usecases, tasks as task_usecases


async def task_download_link(
    uow: UnitOfWork,
    store: FileStore,
    caller: Caller,
    task_id: UUID,
    *,
    purpose: file_usecases.FilePurpose = file_usecases.FilePurpose.OUTPUT,
    policy: file_usecases.FilePolicy,
    now: datetime,
) -> file_usecases.DownloadLink:
    """A signed URL for the task's output file (or its error report)."""
    await task_usecases.get(uow, caller, task_id)
    row = await FileRepository(uow.session).latest_for_task(task_id, purpose.value)
    if row is None or row.status != file_usecases.FileStatus.READY:
        noun = "output file" if purpose is file_usecases.FilePurpose.OUTPUT else "error report"
        raise NotFound(f"task {task_id} has no {noun} yet", task_id=str(task_id))
    return file_usecases.sign_download(store, row, policy, now)


async def upload_for_task(
    uow: UnitOfWork,
    store: FileStore,
    caller: Caller,
    task: TaskRecord,
    *,
    content_type: str | None = None,
    sha256: str | None = None,
    policy: file_usecases.FilePolicy,
    now: datetime,
) -> tuple[TaskRecord, file_usecases.Upload | None]:
    """The input upload of a task created with a fileName (and perhaps its fileContentType and
    fileSha256): made once, re-signed on a replay."""
    if task.file_name is None:
        return task, None
    if task.input_file_id is not None:
        row = await own_input(uow, task)
        if row is None or row.status != file_usecases.FileStatus.PENDING:
            return task, None
        return task, file_usecases.sign_upload(
            store, file_usecases.to_view(row), row.key, policy, now
        )
    new = file_usecases.NewFile(
        task.file_name,
        content_type,
        task.file_size,
        sha256,
        size_field="fileSize",
    )
    upload = await file_usecases.create_upload(
        uow, store, caller, new, policy=policy, now=now, task_id=task.id
    )
    changed = await TaskRepository(uow.session).update_where(
        task.id, [task.status], {"input_file_id": str(upload.file.id)}
    )
    if changed is None:
        raise Conflict(f"task {task.id} changed while this request ran; try again")
    return changed, upload


async def check_input(uow: UnitOfWork, caller: Caller, input_file_id: str) -> None:
    """Refuse an inputFileId that is a file id (a UUID) but not one of the caller's files; other
    values are external references.

    Another user's file and a file that does not exist get the same answer, so that the answer
    does not tell which ids exist.
    """
    try:
        file_id = UUID(input_file_id)
    except ValueError:
        return
    row = await FileRepository(uow.session).get(file_id)
    if row is None or not caller.may_see(row.owner):
        raise InvalidInput(f"file {file_id} not found", field="inputFileId")


async def own_input(uow: UnitOfWork, task: TaskRecord) -> FileRecord | None:
    """The task's own input file row, or None (no file, or an external input reference)."""
    try:
        file_id = UUID(str(task.input_file_id))
    except ValueError:
        return None  # an external input reference, not one of our files
    row = await FileRepository(uow.session).get(file_id)
    return row if row is not None and row.task_id == task.id else None


async def register_output(
    uow: UnitOfWork,
    store: FileStore,
    task_id: UUID,
    key: str,
    *,
    file_name: str,
    content_type: str,
    purpose: file_usecases.FilePurpose = file_usecases.FilePurpose.OUTPUT,
    policy: file_usecases.FilePolicy,
    now: datetime,
) -> file_usecases.FileView:
    """Record a file a task wrote to the store under `key` and link it from the task.

    The file is read back once (in a thread, before any statement, so no transaction waits
    on it) for its size and SHA-256: what is recorded is what the store holds.
    """
    stored = await asyncio.to_thread(digest, store, check_key(key))
    task = await TaskRepository(uow.session).get(task_id)
    if task is None:
        raise NotFound(f"task {task_id} not found", task_id=str(task_id))
    values = {
        "file_name": file_name,
        "content_type": content_type,
        "size": stored.size,
        "sha256": stored.sha256,
        "status": file_usecases.FileStatus.READY.value,
        "owner": task.requested_by,
        "task_id": task_id,
        "purpose": purpose.value,
        "created_at": now,
        "expires_at": now + policy.retention,
    }
    repo = FileRepository(uow.session)
    existing = await repo.get_by_key(key)  # a retried run wrote the same key again
    row = (
        await repo.insert({"id": uuid4(), "key": key, **values})
        if existing is None
        else await repo.update_where(existing.id, existing.status, values)
    )
    if row is None:
        raise Conflict(f"the file under {key!r} changed while this request ran; try again")
    if purpose is not file_usecases.FilePurpose.INPUT:
        changes: TaskChanges = (
            {"output_file_id": str(row.id), "updated_at": now}
            if purpose is file_usecases.FilePurpose.OUTPUT
            else {"report_file_id": str(row.id), "updated_at": now}
        )
        await TaskRepository(uow.session).update_where(task_id, list(TaskStatus), changes)
    return file_usecases.to_view(row)
