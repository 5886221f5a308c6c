"""Download links: short-lived signed URLs of a ready file, or of a task's output or report."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from service.db.repositories.files import FileRecord, FileRepository
from service.db.unit_of_work import UnitOfWork
from service.domain.callers import Caller
from service.domain.errors import NotFound
from service.storage.base import FileStore
from service.usecases import files as file_usecases, tasks as task_usecases
from service.usecases.files import FilePolicy, FilePurpose, FileStatus
from service.usecases.uploads import confirmation
from service.usecases.views import CamelModel


class DownloadLink(CamelModel):
    download_url: str
    expires_at: datetime


def sign_download(
    store: FileStore, row: FileRecord, policy: FilePolicy, now: datetime
) -> DownloadLink:
    url = store.presign_get(row.key, expires=policy.url_seconds, download_name=row.file_name)
    return DownloadLink(download_url=url, expires_at=now + timedelta(seconds=policy.url_seconds))


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
    view = await confirmation.complete_upload(uow, store, caller, file_id, policy=policy, now=now)
    return sign_download(store, await file_usecases.stored(uow, view.id), policy, now)


async def task_download_link(
    uow: UnitOfWork,
    store: FileStore,
    caller: Caller,
    task_id: UUID,
    *,
    purpose: FilePurpose = FilePurpose.OUTPUT,
    policy: FilePolicy,
    now: datetime,
) -> DownloadLink:
    """A signed URL for the task's output file (or its error report)."""
    await task_usecases.get(uow, caller, task_id)
    row = await FileRepository(uow.session).latest_for_task(task_id, purpose.value)
    if row is None or row.status != FileStatus.READY:
        noun = "output file" if purpose is FilePurpose.OUTPUT else "error report"
        raise NotFound(f"task {task_id} has no {noun} yet", task_id=str(task_id))
    return sign_download(store, row, policy, now)
