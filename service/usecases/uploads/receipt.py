"""Bytes that come through the service (a local signed PUT, a multipart import): one upload of
a pending file at a time, and its record describes exactly the bytes stored.

An upload first claims its file in a short transaction of its own: a conditional update, so of
parallel uploads exactly one wins and the others get 409. Its bytes stream into a temporary file
of its own; they are published under the file's key only inside the transaction that marks the
file ready, and only while the claim is still theirs. The claim is refreshed while the bytes
come, so that only a claim left by a killed process goes stale and can be taken over; a writer
whose claim was taken over publishes nothing.

The edge hands in its units of work (`Units`): it owns their commits, as everywhere else.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from service.db.repositories.files import FileRecord, FileRepository
from service.db.unit_of_work import UnitOfWork, Units
from service.domain.callers import Caller
from service.domain.errors import Conflict, NotFound
from service.storage.base import FileStore, FileTooLarge, Stored, write_stream
from service.usecases import content_types, files as file_usecases
from service.usecases.files import FilePolicy, FileStatus, FileView
from service.usecases.uploads import arrival

Clock = Callable[[], datetime]

#: A claim not refreshed for this long was left by a process that died mid-upload.
CLAIM_STALE = timedelta(minutes=2)
#: How often an upload whose bytes are still coming refreshes its claim.
CLAIM_REFRESH = timedelta(seconds=30)

logger = logging.getLogger(__name__)


class AlreadyUploaded(Conflict):
    """This file was uploaded already."""


class UploadInProgress(Conflict):
    """Another upload of this file is in progress; try again once it has ended."""


@dataclass(frozen=True, slots=True)
class Sent:
    """What a client's request says of its bytes."""

    content_type: str | None = None
    content_length: int | None = None


async def receive_signed(
    units: Units,
    store: FileStore,
    key: str,
    chunks: AsyncIterable[bytes],
    sent: Sent,
    *,
    policy: FilePolicy,
    clock: Clock,
) -> FileView:
    """The bytes of a PUT to a local signed upload URL (the signature is checked already)."""
    if sent.content_length is not None and sent.content_length > policy.max_bytes:
        raise FileTooLarge.over(policy.max_bytes, size=sent.content_length)
    async with units() as uow:
        row = await FileRepository(uow.session).get_by_key(key)
    if row is None:
        raise NotFound("no file is waiting for this upload")
    if row.status != FileStatus.PENDING:
        raise AlreadyUploaded(file_id=str(row.id))
    content_types.check_sent_type(sent.content_type, row.content_type)
    return await receive(
        units, store, row.id, chunks, policy=policy, clock=clock, actor=Caller(row.owner)
    )


async def receive(
    units: Units,
    store: FileStore,
    file_id: UUID,
    chunks: AsyncIterable[bytes],
    *,
    policy: FilePolicy,
    clock: Clock,
    actor: Caller,
) -> FileView:
    """Claim the pending file, stream `chunks` in, and publish them with the file's record
    (which releases the task waiting for it). AlreadyUploaded, UploadInProgress: 409s."""
    token = uuid4().hex
    async with units() as uow:
        row = await _claim(uow, file_id, token, now=clock())
    claim = Claim(row, token, units, clock)

    def accept(stored: Stored) -> AbstractAsyncContextManager[None]:
        return claim.finish(stored, policy=policy, actor=actor)

    try:
        await write_stream(
            store,
            row.key,
            row.content_type,
            claim.refreshing(chunks),
            limit=policy.max_bytes,
            accept=accept,
        )
    except BaseException:
        await claim.release()
        raise
    assert claim.view is not None
    return claim.view


async def _claim(uow: UnitOfWork, file_id: UUID, token: str, *, now: datetime) -> FileRecord:
    repo = FileRepository(uow.session)
    stale = now - CLAIM_STALE
    row = await repo.claim_upload(file_id, FileStatus.PENDING, token, now=now, stale_before=stale)
    if row is not None:
        return row
    current = await repo.get(file_id)
    if current is None:
        raise NotFound(f"file {file_id} not found", file_id=str(file_id))
    if current.status != FileStatus.PENDING:
        raise AlreadyUploaded(file_id=str(file_id))
    raise UploadInProgress(file_id=str(file_id))


class Claim:
    """One upload's hold on a pending file."""

    def __init__(self, row: FileRecord, token: str, units: Units, clock: Clock) -> None:
        self.row, self.token, self.units, self.clock = row, token, units, clock
        self.view: FileView | None = None

    async def refreshing(self, chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        """`chunks`, refreshing the claim every CLAIM_REFRESH; UploadInProgress once it is lost."""
        last = time.monotonic()
        async for chunk in chunks:
            if time.monotonic() - last >= CLAIM_REFRESH.total_seconds():
                if await self._update({"upload_claimed_at": self.clock()}) is None:
                    raise UploadInProgress(file_id=str(self.row.id))
                last = time.monotonic()
            yield chunk

    @asynccontextmanager
    async def finish(
        self, stored: Stored, *, policy: FilePolicy, actor: Caller
    ) -> AsyncIterator[None]:
        """Mark the file ready as `stored` while this claim holds it; the block publishes the
        bytes, and the transaction commits only if that succeeds. Refused bytes (not the
        announced size or SHA-256) raise here, before anything is published."""
        problem = arrival.refusal(self.row, stored.size, stored.sha256, policy)
        if problem is not None:
            raise problem
        values = {
            "status": FileStatus.READY.value,
            "size": stored.size,
            "sha256": stored.sha256,
            "upload_claim": None,
            "upload_claimed_at": None,
        }
        async with self.units() as uow:
            row = await FileRepository(uow.session).update_claimed(self.row.id, self.token, values)
            if row is None:  # stalled so long that another upload took the file over
                raise UploadInProgress(file_id=str(self.row.id))
            await arrival.release_task(uow, row, actor, now=self.clock())
            yield
        self.view = file_usecases.to_view(row)

    async def release(self) -> None:
        """Give the claim up after a failed upload: the file stays pending for another one."""
        try:
            await self._update({"upload_claim": None, "upload_claimed_at": None})
        except Exception as error:  # the claim goes stale by itself; the upload's error matters
            logger.warning(
                "upload claim of file %s not released (%s); it goes stale in %s",
                self.row.id,
                error,
                CLAIM_STALE,
                extra={"action": "file.claim_not_released"},
            )

    async def _update(self, values: dict[str, Any]) -> Any:
        async with self.units() as uow:
            return await FileRepository(uow.session).update_claimed(self.row.id, self.token, values)
