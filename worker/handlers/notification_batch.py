"""notification-batch: one message template rendered for each recipient row and sent in
batches on the task's channels, with progress, counts and an error report of the rows that
could not be sent.

Each batch is one transaction: its messages (inbox rows, outbox events, webhook deliveries),
its rows' errors and the checkpoint; a retried run goes on after the last batch it finished,
so nobody is told twice.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from typing import Any, BinaryIO, cast

from service.bulk import streams
from service.bulk.errors import BadFile
from service.bulk.readers import open_reader
from service.bulk.rows import RowError
from service.catalog.notification_batch import PLACEHOLDER, NotificationBatchParams
from service.clock import utcnow
from service.domain.errors import PermanentFailure
from service.usecases import imports, notifications
from service.usecases.imports import Totals
from service.usecases.notifications import Channels, Outgoing
from worker.context import HandlerContext
from worker.handlers import reports, storage
from worker.registry import HandlerRegistry

USER_ID = "userId"
MAX_USER_ID = 128
Row = tuple[int, dict[str, Any] | RowError]


def render(
    params: NotificationBatchParams, number: int, row: dict[str, Any]
) -> Outgoing | RowError:
    """The recipient's message, or why the row cannot be sent."""
    recipient = str(row.get(USER_ID) or "").strip()
    if not recipient:
        return RowError(number, USER_ID, None, "userId is missing")
    if len(recipient) > MAX_USER_ID:
        return RowError(number, USER_ID, recipient[:100], f"userId is longer than {MAX_USER_ID}")
    cells = {str(k): str(v) for k, v in row.items()}
    for template in (params.title, params.body):
        for name in PLACEHOLDER.findall(template):
            if not cells.get(name):
                return RowError(number, name, None, f"the template names {{{name}}}; it is empty")
    title = PLACEHOLDER.sub(lambda m: cells[m.group(1)], params.title)[:200]
    body = PLACEHOLDER.sub(lambda m: cells[m.group(1)], params.body)
    return Outgoing(recipient, title, body, cells)


class BatchRun:
    def __init__(self, ctx: HandlerContext, params: NotificationBatchParams) -> None:
        self.ctx = ctx
        self.params = params
        url = None if params.webhook_url is None else str(params.webhook_url)
        self.via = Channels(tuple(params.channels), url, params.template_key)

    async def run(self) -> None:
        ctx = self.ctx
        async with ctx.unit() as uow:
            totals = await imports.load_totals(uow, ctx.task.id)
            upload = await imports.input_file(uow, ctx.task) if ctx.task.input_file_id else None
        if upload is None:
            listed = [(n, dict(r)) for n, r in enumerate(self.params.recipients, start=1)]
            rows: Iterator[Row] = iter(listed[totals.last_row :])
            await self._send(rows, totals, len(listed))
        else:
            async with storage.reading(ctx.store, upload.key) as stream:
                buffered = cast(BinaryIO, io.BufferedReader(streams.Counted(stream), streams.CHUNK))
                try:
                    reader = await asyncio.to_thread(
                        open_reader,
                        buffered,
                        fmt="csv",
                        filename=upload.file_name,
                        limits=ctx.read_limits,
                        start_after=totals.last_row,
                    )
                except BadFile as error:
                    raise PermanentFailure(f"{upload.file_name}: {error}") from error
                try:
                    if USER_ID not in (reader.columns or ()):
                        raise PermanentFailure(f"{upload.file_name}: the header has no userId")
                    await self._send(iter(reader), totals, None)
                finally:
                    await asyncio.to_thread(reader.close)
        await self._finish(totals)

    async def _send(self, rows: Iterator[Row], totals: Totals, total: int | None) -> None:
        ctx = self.ctx
        while True:
            batch = await asyncio.to_thread(_take, rows, self.params.batch_size)
            if not batch:
                return
            outgoing: list[Outgoing] = []
            errors: list[RowError] = []
            for number, row in batch:
                sent = row if isinstance(row, RowError) else render(self.params, number, row)
                (errors if isinstance(sent, RowError) else outgoing).append(sent)  # type: ignore[arg-type]
            totals.last_row = batch[-1][0]
            totals.batches += 1
            totals.processed += len(batch)
            totals.created += len(outgoing)
            totals.failed += len(errors)
            async with ctx.unit() as uow:
                now = utcnow()
                await notifications.send(uow, ctx.task, outgoing, self.via, now=now)
                await imports.record_batch(uow, ctx.task.id, errors, totals, now=now)
            progress = None if not total else min(99, 100 * totals.processed // total)
            await ctx.report(
                progress=progress,
                total_items=total,
                processed_items=totals.processed,
                succeeded_items=totals.succeeded,
                failed_items=totals.failed,
            )

    async def _finish(self, totals: Totals) -> None:
        ctx = self.ctx
        ctx.result = {
            "processed": totals.processed,
            "sent": totals.succeeded,
            "failed": totals.failed,
        }
        ctx.final.update(
            {
                "processed_items": totals.processed,
                "succeeded_items": totals.succeeded,
                "failed_items": totals.failed,
                "total_items": totals.processed,
            }
        )
        report = await reports.write_error_report(
            ctx,
            stopped_after=totals.last_row,
            note=None,
            rejected_rows=totals.failed,
            file_name="notification-batch-errors.csv",
        )
        if report is not None:
            ctx.result["errorReportFileId"] = str(report)


def _take(rows: Iterator[Row], size: int) -> list[Row]:
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            break
    return batch


async def notification_batch(ctx: HandlerContext) -> None:
    await BatchRun(ctx, ctx.params_as(NotificationBatchParams)).run()


def register(registry: HandlerRegistry) -> None:
    registry.add("notification-batch", None, notification_batch)
