"""Creating an upload: a pending input file, perhaps a task's, and the signed URL for its bytes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from service.db.repositories.files import FileRecord, FileRepository
from service.db.repositories.tasks import TaskRepository
from service.db.unit_of_work import UnitOfWork
from service.domain.callers import Caller
from service.domain.errors import Conflict, InvalidInput
from service.domain.tasks import TaskRecord
from service.storage.base import FileStore, FileTooLarge
from service.usecases.content_types import content_type_of
from service.usecases.files import FilePolicy, FilePurpose, FileStatus, FileView, to_view
from service.usecases.views import CamelModel


class Upload(CamelModel):
    """A new file and where to PUT its bytes (with these headers) before `expires_at`."""

    file: FileView
    upload_url: str
    upload_method: str = "PUT"
    upload_headers: dict[str, str]
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class NewFile:
    """A file to upload; `size` and `sha256` are announced, and the bytes must match them."""

    file_name: str
    content_type: str | None = None
    size: int | None = None
    sha256: str | None = None
    #: the request's name of `size`, named by a 413 ("fileSize" on POST /tasks)
    size_field: str = "size"


def _safe_name(file_name: str) -> str:
    """The file name as a storage key segment: [A-Za-z0-9._-], no leading dot, at most 100."""
    base = re.split(r"[\\/]", file_name)[-1]
    return re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".")[-100:] or "file"


def sign_upload(
    store: FileStore, view: FileView, key: str, policy: FilePolicy, now: datetime
) -> Upload:
    url = store.presign_put(key, expires=policy.url_seconds, content_type=view.content_type)
    return Upload(
        file=view,
        upload_url=url,
        upload_headers=store.put_headers(view.content_type),
        expires_at=now + timedelta(seconds=policy.url_seconds),
    )


async def create_upload(
    uow: UnitOfWork,
    store: FileStore,
    caller: Caller,
    new: NewFile,
    *,
    policy: FilePolicy,
    now: datetime,
    task_id: UUID | None = None,
) -> Upload:
    """Record a pending input file and sign the URL its bytes go to."""
    if new.size is not None and new.size > policy.max_bytes:
        raise FileTooLarge.over(policy.max_bytes, size=new.size, field=new.size_field)
    file_id = uuid4()
    key = f"uploads/{file_id}/{_safe_name(new.file_name)}"
    row = await FileRepository(uow.session).insert(
        {
            "id": file_id,
            "key": key,
            "file_name": new.file_name,
            "content_type": content_type_of(new.file_name, new.content_type),
            "size": new.size,
            "sha256": None if new.sha256 is None else new.sha256.lower(),
            "status": FileStatus.PENDING.value,
            "owner": caller.user_id,
            "task_id": task_id,
            "purpose": FilePurpose.INPUT.value,
            "created_at": now,
            "expires_at": now + policy.retention,
        }
    )
    return sign_upload(store, to_view(row), key, policy, now)


async def upload_for_task(
    uow: UnitOfWork,
    store: FileStore,
    caller: Caller,
    task: TaskRecord,
    *,
    content_type: str | None = None,
    sha256: str | None = None,
    policy: FilePolicy,
    now: datetime,
) -> tuple[TaskRecord, Upload | None]:
    """The input upload of a task created with a fileName (and perhaps its fileContentType and
    fileSha256): made once, re-signed on a replay."""
    if task.file_name is None:
        return task, None
    if task.input_file_id is not None:
        row = await own_input(uow, task)
        if row is None or row.status != FileStatus.PENDING:
            return task, None
        return task, sign_upload(store, to_view(row), row.key, policy, now)
    new = NewFile(task.file_name, content_type, task.file_size, sha256, size_field="fileSize")
    upload = await create_upload(uow, store, caller, new, policy=policy, now=now, task_id=task.id)
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
