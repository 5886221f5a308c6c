"""File use cases: uploads through signed URLs, reads, download links, retention."""

from __future__ import annotations

import asyncio
import enum
import mimetypes
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from service.config import Settings
from service.db.repositories.files import FileRecord, FileRepository
from service.db.repositories.tasks import TaskRepository
from service.db.unit_of_work import UnitOfWork
from service.domain import transitions
from service.domain.callers import Caller
from service.domain.errors import Conflict, InvalidInput, NotFound
from service.domain.tasks import TaskStatus
from service.storage.base import FileStore, FileTooLarge, ObjectNotFound, digest
from service.usecases import history
from service.usecases.views import CamelModel

DEFAULT_CONTENT_TYPE = "application/octet-stream"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#: Media types an import reads (service/bulk sniffs CSV, JSON Lines, XLSX, optionally gzipped).
IMPORT_CONTENT_TYPES = frozenset(
    {
        "text/csv",
        "text/plain",
        "text/tab-separated-values",
        "application/csv",
        "application/x-ndjson",
        "application/jsonl",
        "application/x-jsonlines",
        "application/json",
        XLSX,
        "application/gzip",
        "application/x-gzip",
        DEFAULT_CONTENT_TYPE,
    }
)
#: Types of the file names an import reads, fixed here rather than taken from the host's
#: mime.types, so that such a name gets an accepted type on every machine.
_IMPORT_NAME_TYPES = {
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
    "txt": "text/plain",
    "json": "application/json",
    "jsonl": "application/x-ndjson",
    "ndjson": "application/x-ndjson",
    "xlsx": XLSX,
    "gz": "application/gzip",
}


class UnsupportedMediaType(InvalidInput):
    """The file's content type is not one this service accepts here."""


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
    sha256: str | None
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
    """A file to upload; `size` and `sha256` are announced, and the bytes must match them."""

    file_name: str
    content_type: str | None = None
    size: int | None = None
    sha256: str | None = None
    #: the request's name of `size`, named by a 413 ("fileSize" on POST /tasks)
    size_field: str = "size"


def to_view(row: FileRecord) -> FileView:
    return FileView.model_validate(row)


def _safe_name(file_name: str) -> str:
    """The file name as a storage key segment: [A-Za-z0-9._-], no leading dot, at most 100."""
    base = re.split(r"[\\/]", file_name)[-1]
    return re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".")[-100:] or "file"


def content_type_of(file_name: str, declared: str | None = None) -> str:
    """The declared content type, else the one the file name suggests, else the generic one."""
    if declared:
        return declared
    stem, dot, extension = file_name.lower().rpartition(".")
    fixed = _IMPORT_NAME_TYPES.get(extension) if dot and stem else None
    return fixed or mimetypes.guess_type(file_name)[0] or DEFAULT_CONTENT_TYPE


def media_type(content_type: str) -> str:
    """The type without its parameters, lowercase: "Text/CSV; charset=utf-8" -> "text/csv"."""
    return content_type.split(";", 1)[0].strip().lower()


def check_import_type(content_type: str, *, field: str) -> None:
    """Refuse an import input whose content type the import cannot read (415)."""
    if media_type(content_type) not in IMPORT_CONTENT_TYPES:
        accepted = ", ".join(sorted(IMPORT_CONTENT_TYPES))
        raise UnsupportedMediaType(f"an import reads {accepted}; not {content_type}", field=field)


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


async def _visible(uow: UnitOfWork, caller: Caller, file_id: UUID) -> FileRecord:
    row = await FileRepository(uow.session).get(file_id)
    if row is None or not caller.may_see(row.owner):
        raise NotFound(f"file {file_id} not found", file_id=str(file_id))
    return row


async def get(uow: UnitOfWork, caller: Caller, file_id: UUID) -> FileView:
    """One file the caller may see; another user's file is reported as not found."""
    return to_view(await _visible(uow, caller, file_id))


async def list_files(
    uow: UnitOfWork, caller: Caller, *, page: int, page_size: int
) -> tuple[list[FileView], int]:
    """Newest first; users see their own files, admins everyone's."""
    owner = None if caller.sees_all else caller.user_id
    rows, total = await FileRepository(uow.session).page(
        owner, limit=page_size, offset=(page - 1) * page_size
    )
    return [to_view(r) for r in rows], total


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
    row = await _visible(uow, caller, file_id)
    if row.status == FileStatus.READY:
        return to_view(row)
    await uow.commit()  # a read so far: end it before reading the bytes back
    try:
        found = await arrived(store, row, policy)
    except ObjectNotFound as error:
        raise Conflict(f"file {file_id} has not been uploaded yet", file_id=str(file_id)) from error
    return await mark_uploaded(
        uow, store, row, found.size, sha256=found.sha256, policy=policy, now=now, actor=caller
    )


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
        return to_view(await _stored(uow, row.id))
    if updated.purpose == FilePurpose.INPUT and updated.task_id is not None:
        await release_task(uow, updated, actor or Caller(row.owner), now=now)
    return to_view(updated)


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


async def release_task(uow: UnitOfWork, file: FileRecord, actor: Caller, *, now: datetime) -> None:
    """A task waiting for its input `file` (now ready) becomes pending, with the file's size as
    its fileSize: the work trigger goes out with it."""
    task_id = file.task_id
    if task_id is None:
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


async def download_link(
    uow: UnitOfWork,
    store: FileStore,
    caller: Caller,
    file_id: UUID,
    *,
    policy: FilePolicy,
    now: datetime,
) -> DownloadLink:
    """A signed URL for a ready file (a pending one is checked in the store first)."""
    view = await complete_upload(uow, store, caller, file_id, policy=policy, now=now)
    return sign_download(store, await _stored(uow, view.id), policy, now)


async def _stored(uow: UnitOfWork, file_id: UUID) -> FileRecord:
    """A file known to exist a moment ago; NotFound if retention deleted it meanwhile."""
    row = await FileRepository(uow.session).get(file_id)
    if row is None:
        raise NotFound(f"file {file_id} not found", file_id=str(file_id))
    return row


def sign_download(
    store: FileStore, row: FileRecord, policy: FilePolicy, now: datetime
) -> DownloadLink:
    url = store.presign_get(row.key, expires=policy.url_seconds, download_name=row.file_name)
    return DownloadLink(download_url=url, expires_at=now + timedelta(seconds=policy.url_seconds))
