"""Export: page records out of a source and stream them into a CSV, JSON Lines or XLSX file.

The file is written under a key derived from the task id, so a retried run overwrites its
own earlier attempt instead of leaving a second file behind.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from service.bulk import params as bulk_params
from service.bulk.eta import Eta
from service.bulk.formats.base import RowWriter
from service.bulk.schemas import SCHEMAS
from service.bulk.writers import CONTENT_TYPES, file_name, open_writer
from service.clock import utcnow
from service.sinks.base import Page, Selection
from service.usecases import outputs
from worker.context import HandlerContext
from worker.handlers import storage
from worker.handlers.imports import schema_for
from worker.registry import HandlerRegistry


async def run_export(ctx: HandlerContext) -> None:
    """Export one entity type to a file in storage; the task's output is its download."""
    schema = schema_for(ctx.task.entity_type)
    export = bulk_params.parse_export(schema, ctx.params)
    params = export.params
    name = params.file_name or file_name(f"{schema.entity}-export", params.format, gzip=params.gzip)
    key = f"exports/{ctx.task.id}/{file_name('export', params.format, gzip=params.gzip)}"
    content_type = "application/gzip" if params.gzip else CONTENT_TYPES[params.format]
    written, pace = await _write(ctx, export, schema.entity, key, content_type)
    async with ctx.unit() as uow:
        view = await outputs.register_output(
            uow,
            ctx.store,
            ctx.task.id,
            key,
            file_name=name,
            content_type=content_type,
            policy=ctx.files,
            now=utcnow(),
        )
    ctx.result = {
        "rowsWritten": written,
        "rowsPerSecond": pace.rate(written),
        "format": params.format,
        "gzip": params.gzip,
        "outputFileId": str(view.id),
        "columns": [c.name for c in export.columns],
    }
    ctx.final.update(  # the completed task's progress (100) is the lifecycle's to set
        {
            "processed_items": written,
            "succeeded_items": written,
            "total_items": written,
            "failed_items": 0,
            "output_file_id": str(view.id),
        }
    )


async def _write(
    ctx: HandlerContext, export: bulk_params.Export, entity: str, key: str, content_type: str
) -> tuple[int, Pace]:
    """Page the selected records out of the source the params name into a file under `key`
    (a failure publishes nothing); the rows written, and the pace they were written at."""
    params = export.params
    selection = Selection.of(entity, export)
    source = ctx.connector.source(params)
    try:
        pace = Pace(await source.count(selection))  # None: the source does not say
        await ctx.report(**pace.figures(0))
        async with storage.writing(ctx.store, key, content_type) as stream:
            writer = open_writer(stream, params.format, export.columns, gzip=params.gzip)
            written = await _write_pages(ctx, writer, source.pages(selection), pace)
            await asyncio.to_thread(writer.close)
    finally:
        await source.close()
    return written, pace


class Pace:
    """How far an export is. With a total (the local store's count of the matching records,
    taken before the first page): a percentage, at most 99 until the task completes, and the
    seconds left at the rate so far. With a remote source, whose total is unknown: the rate."""

    def __init__(self, total: int | None) -> None:
        self.total = total
        self.started = time.monotonic()
        self._eta = Eta()

    def rate(self, written: int) -> float:
        """Rows per second since the first page was asked for."""
        return round(written / max(time.monotonic() - self.started, 1e-6), 1)

    def figures(self, written: int) -> dict[str, Any]:
        """A progress report after `written` rows (fields of `HandlerContext.report`)."""
        progress: int | None = None
        eta: float | None = None
        if self.total is not None and written > self.total:
            self.total = written  # records added since they were counted: the count was low
        if self.total:
            progress, eta = self._eta.update(written / self.total, time.monotonic())
        elif self.total == 0:
            progress = 0
        return {
            "progress": progress,
            "total_items": self.total,
            "processed_items": written,
            "succeeded_items": written,
            "result": {
                "rowsWritten": written,
                "rowsPerSecond": self.rate(written),
                "etaSeconds": eta,
            },
        }


async def _write_pages(
    ctx: HandlerContext, writer: RowWriter, pages: AsyncIterator[Page], pace: Pace
) -> int:
    """Write page after page (in a thread) while the next page is fetched; rows written."""
    written = 0
    writing: asyncio.Future[int] | None = None
    try:
        async for page in pages:
            if writing is not None:
                written += await writing
                await ctx.report(**pace.figures(written))
            writing = asyncio.ensure_future(asyncio.to_thread(writer.write_rows, page))
        if writing is not None:
            written += await writing
            writing = None
            await ctx.report(**pace.figures(written))
    finally:
        if writing is not None:  # the writer must be idle before the file is closed
            await asyncio.wait([writing])
            if not writing.cancelled():
                writing.exception()
    return written


def register(registry: HandlerRegistry) -> None:
    for entity in SCHEMAS:
        registry.add("export", entity, run_export)
