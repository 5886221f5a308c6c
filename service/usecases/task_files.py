"""A task's files: the input it was created with, and the outputs and reports it wrote."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncSession

from service.db.repositories.files import FileRepository
from service.db.repositories.tasks import TaskRepository
from service.domain.callers import Caller
from service.domain.errors import Conflict, InvalidInput, NotFound
from service.domain.tasks import TaskStatus
from service.storage.base import FileStore, check_key, digest
from service.usecases import files as file_usecases, tasks as task_usecases
from service.usecases.views import TaskView


async def task_download_link(
    session: AsyncSession,
    store: FileStore,
    caller: Caller,
    task_id: UUID,
    *,
    purpose: file_usecases.FilePurpose = file_usecases.FilePurpose.OUTPUT,
    policy: file_usecases.FilePolicy,
    now: datetime,
) -> file_usecases.DownloadLink:
    """A signed URL for the task's output file (or its error report)."""
    await task_usecases.get(session, caller, task_id)
    row = await FileRepository(session).latest_for_task(task_id, purpose.value)
    if row is None or row.status != file_usecases.FileStatus.READY:
        noun = "output file" if purpose is file_usecases.FilePurpose.OUTPUT else "error report"
        raise NotFound(f"task {task_id} has no {noun} yet", task_id=str(task_id))
    return file_usecases.sign_download(store, row, policy, now)


async def upload_for_task(
    session: AsyncSession,
    store: FileStore,
    caller: Caller,
    task: TaskView,
    *,
    content_type: str | None = None,
    sha256: str | None = None,
    policy: file_usecases.FilePolicy,
    now: datetime,
) -> tuple[TaskView, file_usecases.Upload | None]:
    """The input upload of a task created with a fileName (and perhaps its fileContentType and
    fileSha256): made once, re-signed on a replay."""
    if task.file_name is None:
        return task, None
    if task.input_file_id is not None:
        row = await own_input(session, task)
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
        session, store, caller, new, policy=policy, now=now, task_id=task.id
    )
    values = {"input_file_id": str(upload.file.id)}
    row = await TaskRepository(session).update_where(task.id, [task.status], values)
    if row is None:
        raise Conflict(f"task {task.id} changed while this request ran; try again")
    return TaskView.from_row(row._mapping), upload


async def check_input(session: AsyncSession, caller: Caller, input_file_id: str) -> None:
    """Refuse an inputFileId that is a file id (a UUID) but not one of the caller's files; other
    values are external references.

    Another user's file and a file that does not exist get the same answer, so that the answer
    does not tell which ids exist.
    """
    try:
        file_id = UUID(input_file_id)
    except ValueError:
        return
    row = await FileRepository(session).get(file_id)
    if row is None or not caller.may_see(row.owner):
        raise InvalidInput(f"file {file_id} not found", field="inputFileId")


async def own_input(session: AsyncSession, task: TaskView) -> Any:
    """The task's own input file row, or None (no file, or an external input reference)."""
    try:
        file_id = UUID(str(task.input_file_id))
    except ValueError:
        return None  # an external input reference, not one of our files
    row = await FileRepository(session).get(file_id)
    return row if row is not None and row.task_id == task.id else None


async def register_output(
    session: AsyncSession,
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
    task = await TaskRepository(session).get(task_id)
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
    repo = FileRepository(session)
    existing = await repo.get_by_key(key)  # a retried run wrote the same key again
    row = (
        await repo.insert({"id": uuid4(), "key": key, **values})
        if existing is None
        else await repo.update_where(existing.id, existing.status, values)
    )
    if row is None:
        raise Conflict(f"the file under {key!r} changed while this request ran; try again")
    if purpose is not file_usecases.FilePurpose.INPUT:
        column = (
            "output_file_id" if purpose is file_usecases.FilePurpose.OUTPUT else "report_file_id"
        )
        await TaskRepository(session).update_where(
            task_id, list(TaskStatus), {column: str(row.id), "updated_at": now}
        )
    return file_usecases.to_view(row)
