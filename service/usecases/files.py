"""File use cases: uploads through signed URLs, reads, download links, retention."""

from __future__ import annotations

import asyncio
import enum
import mimetypes
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncSession

from service.config import Settings
from service.db.repositories.files import FileRepository
from service.db.repositories.tasks import TaskRepository
from service.domain import transitions
from service.domain.callers import Caller
from service.domain.errors import Conflict, InvalidInput, NotFound
from service.domain.tasks import TaskStatus
from service.storage.base import FileStore, FileTooLarge, ObjectNotFound
from service.usecases import history
from service.usecases.views import CamelModel, TaskView

DEFAULT_CONTENT_TYPE = "application/octet-stream"


class FileStatus(enum.StrEnum):
    PENDING = "pending"  #: the record exists; its bytes have not arrived yet
    READY = "ready"  #: the bytes are in the store and their size is recorded


class FilePurpose(enum.StrEnum):
    INPUT = "input"  #: uploaded by a person or a service, usually for an import
    OUTPUT = "output"  #: written by a task, e.g. an export
    ERROR_REPORT = "error_report"  #: the rows an import rejected, with the reasons


@dataclass(frozen=True, slots=True)
class FilePolicy:
    """Limits and lifetimes from the settings."""

    url_seconds: int
    max_bytes: int
    retention: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> FilePolicy:
        return cls(
            settings.files_url_seconds, settings.files_max_bytes, timedelta(settings.retention_days)
        )


class FileView(CamelModel):
    """A file as its owner sees it (the storage key stays inside the service)."""

    id: UUID
    file_name: str
    content_type: str
    size: int | None
    status: FileStatus
    owner: str
    task_id: UUID | None
    purpose: FilePurpose
    created_at: datetime
    expires_at: datetime | None


class Upload(CamelModel):
    """A new file and where to PUT its bytes (with these headers) before `expires_at`."""

    file: FileView
    upload_url: str
    upload_method: str = "PUT"
    upload_headers: dict[str, str]
    expires_at: datetime


class DownloadLink(CamelModel):
    download_url: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class NewFile:
    file_name: str
    content_type: str | None = None
    size: int | None = None


def to_view(row: Any) -> FileView:
    return FileView.model_validate(row._mapping)


def _safe_name(file_name: str) -> str:
    """The file name as a storage key segment: [A-Za-z0-9._-], no leading dot, at most 100."""
    base = re.split(r"[\\/]", file_name)[-1]
    return re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".")[-100:] or "file"


def _content_type(new: NewFile) -> str:
    return new.content_type or mimetypes.guess_type(new.file_name)[0] or DEFAULT_CONTENT_TYPE


def sign_upload(
    store: FileStore, view: FileView, key: str, policy: FilePolicy, now: datetime
) -> Upload:
    url = store.presign_put(key, expires=policy.url_seconds, content_type=view.content_type)
    return Upload(
        file=view,
        upload_url=url,
        upload_headers={"Content-Type": view.content_type},
        expires_at=now + timedelta(seconds=policy.url_seconds),
    )


async def create_upload(
    session: AsyncSession,
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
        raise FileTooLarge(f"files are limited to {policy.max_bytes} bytes", field="size")
    file_id = uuid4()
    key = f"uploads/{file_id}/{_safe_name(new.file_name)}"
    row = await FileRepository(session).insert(
        {
            "id": file_id,
            "key": key,
            "file_name": new.file_name,
            "content_type": _content_type(new),
            "size": new.size,
            "status": FileStatus.PENDING.value,
            "owner": caller.user_id,
            "task_id": task_id,
            "purpose": FilePurpose.INPUT.value,
            "created_at": now,
            "expires_at": now + policy.retention,
        }
    )
    return sign_upload(store, to_view(row), key, policy, now)


async def _visible(session: AsyncSession, caller: Caller, file_id: UUID) -> Any:
    row = await FileRepository(session).get(file_id)
    if row is None or not caller.may_see(row.owner):
        raise NotFound(f"file {file_id} not found", file_id=str(file_id))
    return row


async def get(session: AsyncSession, caller: Caller, file_id: UUID) -> FileView:
    """One file the caller may see; another user's file is reported as not found."""
    return to_view(await _visible(session, caller, file_id))


async def list_files(
    session: AsyncSession, caller: Caller, *, page: int, page_size: int
) -> tuple[list[FileView], int]:
    """Newest first; users see their own files, admins everyone's."""
    owner = None if caller.sees_all else caller.user_id
    rows, total = await FileRepository(session).page(
        owner, limit=page_size, offset=(page - 1) * page_size
    )
    return [to_view(r) for r in rows], total


async def complete_upload(
    session: AsyncSession,
    store: FileStore,
    caller: Caller,
    file_id: UUID,
    *,
    policy: FilePolicy,
    now: datetime,
) -> FileView:
    """Check that the bytes arrived (uploads to S3 bypass the API) and mark the file ready."""
    row = await _visible(session, caller, file_id)
    if row.status == FileStatus.READY:
        return to_view(row)
    try:
        size = await asyncio.to_thread(store.size, row.key)
    except ObjectNotFound as error:
        raise Conflict(f"file {file_id} has not been uploaded yet", file_id=str(file_id)) from error
    return await mark_uploaded(session, store, row, size, policy=policy, now=now, actor=caller)


async def mark_uploaded(
    session: AsyncSession,
    store: FileStore,
    row: Any,
    size: int,
    *,
    policy: FilePolicy,
    now: datetime,
    actor: Caller | None = None,
) -> FileView:
    """Mark a pending file ready after its bytes arrived, and start the task that waited for it.

    Bytes of the wrong size (or too many) are deleted and refused: the upload can be repeated.
    """
    problem = _size_problem(row, size, policy)
    if problem is not None:
        await asyncio.to_thread(store.delete, row.key)
        raise problem
    updated = await FileRepository(session).update_where(
        row.id, FileStatus.PENDING.value, {"status": FileStatus.READY.value, "size": size}
    )
    if updated is None:  # a concurrent upload of the same file marked it first
        return to_view(await FileRepository(session).get(row.id))
    if updated.purpose == FilePurpose.INPUT and updated.task_id is not None:
        await _release_task(session, updated.task_id, actor or Caller(row.owner), now=now)
    return to_view(updated)


def _size_problem(row: Any, size: int, policy: FilePolicy) -> InvalidInput | None:
    if size > policy.max_bytes:
        return FileTooLarge(f"files are limited to {policy.max_bytes} bytes", field="size")
    if row.size is not None and size != row.size:
        return InvalidInput(
            f"the upload has {size} bytes but {row.size} were announced; upload it again",
            field="size",
        )
    return None


async def _release_task(
    session: AsyncSession, task_id: UUID, actor: Caller, *, now: datetime
) -> None:
    """A task waiting for its input file becomes pending: the work trigger goes out with it."""
    current = await TaskRepository(session).get(task_id)
    if current is None or current.status != TaskStatus.WAITING:
        return
    event = transitions.transition(TaskStatus.WAITING, TaskStatus.PENDING)
    values = {"status": TaskStatus.PENDING.value, "available_at": now, "updated_at": now}
    row = await TaskRepository(session).update_where(task_id, [TaskStatus.WAITING], values)
    if row is None:
        return  # cancelled meanwhile
    task = TaskView.from_row(row._mapping)
    change = history.Change(
        task, event, TaskStatus.WAITING, actor=actor.user_id, message="input file uploaded"
    )
    await history.record(session, [change], now=now)
    history.note_new_pending(session, task.id)


async def download_link(
    session: AsyncSession,
    store: FileStore,
    caller: Caller,
    file_id: UUID,
    *,
    policy: FilePolicy,
    now: datetime,
) -> DownloadLink:
    """A signed URL for a ready file (a pending one is checked in the store first)."""
    view = await complete_upload(session, store, caller, file_id, policy=policy, now=now)
    row = await FileRepository(session).get(view.id)
    return sign_download(store, row, policy, now)


def sign_download(store: FileStore, row: Any, policy: FilePolicy, now: datetime) -> DownloadLink:
    url = store.presign_get(row.key, expires=policy.url_seconds, download_name=row.file_name)
    return DownloadLink(download_url=url, expires_at=now + timedelta(seconds=policy.url_seconds))


async def purge_expired(
    session: AsyncSession, store: FileStore, *, now: datetime, limit: int = 500
) -> int:
    """Delete up to `limit` files past their expiry: the bytes, then the records (for the
    cleanup-old-files job; a record whose bytes are already gone is simply removed)."""
    rows = await FileRepository(session).expired(now, limit)
    for row in rows:
        await asyncio.to_thread(store.delete, row.key)
    return await FileRepository(session).delete_ids([r.id for r in rows])
