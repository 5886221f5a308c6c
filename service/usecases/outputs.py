"""The files a task writes (an export, an import's error report), recorded and linked from it."""

from __future__ import annotations

import asyncio
from datetime import datetime
from uuid import UUID, uuid4

from service.db.repositories.files import FileRepository
from service.db.repositories.tasks import TaskChanges, TaskRepository
from service.db.unit_of_work import UnitOfWork
from service.domain.errors import Conflict, NotFound
from service.domain.tasks import TaskStatus
from service.storage.base import FileStore, check_key, digest
from service.usecases.files import FilePolicy, FilePurpose, FileStatus, FileView, to_view


async def register_output(
    uow: UnitOfWork,
    store: FileStore,
    task_id: UUID,
    key: str,
    *,
    file_name: str,
    content_type: str,
    purpose: FilePurpose = FilePurpose.OUTPUT,
    policy: FilePolicy,
    now: datetime,
) -> FileView:
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
        "status": FileStatus.READY.value,
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
    if purpose is not FilePurpose.INPUT:
        changes: TaskChanges = (
            {"output_file_id": str(row.id), "updated_at": now}
            if purpose is FilePurpose.OUTPUT
            else {"report_file_id": str(row.id), "updated_at": now}
        )
        await TaskRepository(uow.session).update_where(task_id, list(TaskStatus), changes)
    return to_view(row)
