"""Reader work in a thread that a cancel can stop midway."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from service.bulk import streams
from service.domain.errors import TaskCancelled
from worker.context import HandlerContext

T = TypeVar("T")
#: While the reader thread is inside one batch, how often the run looks for a cancel.
CANCEL_POLL_SECONDS = 1.0


class CancelWatch:
    """Awaits a reader's work (done in a thread, with `stop` given to the reader). While the
    work takes longer than a poll interval (a long run of blank rows, skipping to the
    checkpoint, huge rows) it looks for a cancel of the task and, on one, sets `stop`: the
    reader raises `streams.Stopped` at its next chunk, which becomes TaskCancelled here."""

    def __init__(self, ctx: HandlerContext) -> None:
        self.ctx = ctx
        self.stop = streams.Stop()

    async def result(self, work: Awaitable[T]) -> T:
        future = asyncio.ensure_future(work)
        try:
            while not (await asyncio.wait({future}, timeout=CANCEL_POLL_SECONDS))[0]:
                if await self._cancel_requested():
                    self.stop.set()
        except BaseException:
            self.stop.set()  # the handler itself was cancelled: let the thread end soon
            raise
        try:
            return future.result()
        except streams.Stopped:
            raise TaskCancelled(f"task {self.ctx.task.id} was cancelled while it ran") from None

    async def _cancel_requested(self) -> bool:
        async with self.ctx.unit() as uow:
            await self.ctx.learn_cancel(uow)
        return self.ctx.cancel_requested
