"""Tasks waiting for their input file that nobody confirmed: detected in the store, or expired.

A local upload marks its file ready itself (the API receives the bytes, see `receipt`). Bytes
PUT straight to S3 bypass the API, so the client confirms them (`confirmation`), and the
check-uploads job looks for objects nobody confirmed; a task whose upload never comes, or
whose upload the job has to refuse (too large, not the announced size or SHA-256), fails with a
clear message.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from service.db.repositories.files import FileRecord, FileRepository
from service.db.repositories.tasks import TaskRepository
from service.db.unit_of_work import UnitOfWork
from service.domain import transitions
from service.domain.callers import Caller
from service.domain.errors import InvalidInput
from service.domain.tasks import TaskRecord, TaskStatus
from service.storage.base import FileStore, ObjectNotFound
from service.usecases import history, notifications
from service.usecases.files import FilePolicy, FileStatus
from service.usecases.uploads import creation
from service.usecases.uploads.arrival import Arrival, arrived, mark_uploaded

JOB = "check-uploads"


@dataclass(frozen=True, slots=True)
class Waiting:
    """A waiting task and where its bytes would be."""

    task: TaskRecord
    file: FileRecord | None  # None when the task has no file of ours

    @property
    def key(self) -> str | None:
        return None if self.file is None else str(self.file.key)


async def waiting(uow: UnitOfWork, *, limit: int) -> list[Waiting]:
    tasks = await TaskRepository(uow.session).waiting(limit)
    return [Waiting(t, await creation.own_input(uow, t)) for t in tasks]


async def arrivals(
    store: FileStore, items: list[Waiting], policy: FilePolicy
) -> list[Arrival | None]:
    """What arrived for each waiting task, None where nothing did (run side by side)."""

    async def one(item: Waiting) -> Arrival | None:
        if item.file is None:
            return None
        try:
            return await arrived(store, item.file, policy)
        except ObjectNotFound:
            return None

    return list(await asyncio.gather(*(one(item) for item in items)))


async def settle(
    uow: UnitOfWork,
    store: FileStore,
    item: Waiting,
    *,
    arrival: Arrival | None,
    policy: FilePolicy,
    wait: timedelta,
    now: datetime,
) -> str | None:
    """Release a waiting task whose bytes arrived, fail it when they are refused (nobody else
    would learn why) or once it waited too long.

    Returns "released", "refused", "expired" or None (still waiting, or changed meanwhile).
    """
    if arrival is not None and item.file is not None:
        row = await FileRepository(uow.session).get(item.file.id)
        if row is not None and row.status == FileStatus.PENDING:
            try:
                await mark_uploaded(
                    uow,
                    store,
                    row,
                    arrival.size,
                    sha256=arrival.sha256,
                    policy=policy,
                    now=now,
                    actor=Caller(JOB),
                )
            except InvalidInput as refused:  # mark_uploaded deleted the bytes
                message = (
                    f"the input file {_name(item)!r} was refused: {refused.detail}; "
                    "create the task again and upload the file"
                )
                return "refused" if await _fail(uow, item, message, now=now) else None
            return "released"
    if now - item.task.created_at < wait:
        return None
    message = (
        f"the input file {_name(item)!r} was not uploaded within {_span(wait)} of creating the "
        "task; create the task again and upload the file"
    )
    return "expired" if await _fail(uow, item, message, now=now) else None


def _name(item: Waiting) -> str:
    return item.task.file_name or "the input file"


async def _fail(uow: UnitOfWork, item: Waiting, message: str, *, now: datetime) -> bool:
    task = item.task
    event = transitions.transition(TaskStatus.WAITING, TaskStatus.FAILED)
    after = await TaskRepository(uow.session).update_where(
        task.id,
        [TaskStatus.WAITING],
        {
            "status": TaskStatus.FAILED,
            "error_message": message,
            "completed_at": now,
            "updated_at": now,
        },
    )
    if after is None:
        return False  # uploaded, cancelled or expired by another replica meanwhile
    change = history.Change(after, event, TaskStatus.WAITING, actor=JOB, message=message)
    await history.record(uow, [change], now=now)
    await notifications.on_endings(uow, [after], now=now)
    return True


def _span(wait: timedelta) -> str:
    seconds = int(wait.total_seconds())
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} hour" + ("s" if hours != 1 else "")
    if seconds % 60 == 0:
        return f"{seconds // 60} minutes"
    return f"{seconds} seconds"
