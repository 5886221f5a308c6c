"""Files as their owners see them: statuses, purposes, the limits from the settings, reads.

The upload life cycle is `service/usecases/uploads/`; download links `downloads.py`; the files
a task writes `outputs.py`; retention `file_retention.py`; content types `content_types.py`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from service.config import Settings
from service.db.repositories.files import FileRecord, FileRepository
from service.db.unit_of_work import UnitOfWork
from service.domain.callers import Caller
from service.domain.errors import NotFound
from service.usecases.views import CamelModel


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


def to_view(row: FileRecord) -> FileView:
    return FileView.model_validate(row)


async def visible(uow: UnitOfWork, caller: Caller, file_id: UUID) -> FileRecord:
    """A file the caller may see; another user's file is reported as not found."""
    row = await FileRepository(uow.session).get(file_id)
    if row is None or not caller.may_see(row.owner):
        raise NotFound(f"file {file_id} not found", file_id=str(file_id))
    return row


async def stored(uow: UnitOfWork, file_id: UUID) -> FileRecord:
    """A file known to exist a moment ago; NotFound if retention deleted it meanwhile."""
    row = await FileRepository(uow.session).get(file_id)
    if row is None:
        raise NotFound(f"file {file_id} not found", file_id=str(file_id))
    return row


async def get(uow: UnitOfWork, caller: Caller, file_id: UUID) -> FileView:
    """One file the caller may see; another user's file is reported as not found."""
    return to_view(await visible(uow, caller, file_id))


async def list_files(
    uow: UnitOfWork, caller: Caller, *, page: int, page_size: int
) -> tuple[list[FileView], int]:
    """Newest first; users see their own files, admins everyone's."""
    owner = None if caller.sees_all else caller.user_id
    rows, total = await FileRepository(uow.session).page(
        owner, limit=page_size, offset=(page - 1) * page_size
    )
    return [to_view(r) for r in rows], total
