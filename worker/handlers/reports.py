"""The error report of an import: its rejected rows, stored as the task's report file.

Its size is bounded: an import lists at most maxErrors + 1 rejected rows (it stops there),
each with at most `pipeline.MAX_ROW_PROBLEMS` lines, values cut to `rows.MAX_REPORTED_VALUE`.
"""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

from service.bulk.formats.base import RowWriter
from service.bulk.rows import ERROR_COLUMNS
from service.bulk.writers import CONTENT_TYPES, open_writer
from service.clock import utcnow
from service.usecases import imports, outputs
from service.usecases.files import FilePurpose
from worker.context import HandlerContext
from worker.handlers import storage

PAGE = 5000


async def write_error_report(
    ctx: HandlerContext,
    *,
    stopped_after: int,
    note: str | None,
    rejected_rows: int,
    cancellable: bool = True,
    file_name: str | None = None,
) -> UUID | None:
    """Write the report (CSV) when there are rejected rows or the run stopped early.

    With `cancellable`, each page of rows learns of a cancel in its own transaction and
    a cancel ends the write (TaskCancelled): the partial report is not kept.
    """
    task_id = ctx.task.id
    async with ctx.unit() as uow:
        first = await imports.rejected_rows(uow, task_id, after_id=0, limit=1)
    if not first and note is None:
        return None
    key = f"reports/{task_id}/errors.csv"
    async with storage.writing(ctx.store, key, CONTENT_TYPES["csv"]) as stream:
        writer = open_writer(stream, "csv", ERROR_COLUMNS)
        listed = await _write_rows(ctx, writer, cancellable=cancellable)
        if listed < rejected_rows:
            writer.write_row(
                _note(
                    stopped_after,
                    f"{rejected_rows - listed:,} more rejected rows are not listed (maxErrors)",
                )
            )
        if note is not None:
            writer.write_row(_note(stopped_after, f"import stopped after this row: {note}"))
        await asyncio.to_thread(writer.close)
    async with ctx.unit() as uow:
        view = await outputs.register_output(
            uow,
            ctx.store,
            task_id,
            key,
            file_name=file_name or f"{ctx.task.entity_type}-import-errors.csv",
            content_type=CONTENT_TYPES["csv"],
            purpose=FilePurpose.ERROR_REPORT,
            policy=ctx.files,
            now=utcnow(),
        )
    return view.id


async def _write_rows(ctx: HandlerContext, writer: RowWriter, *, cancellable: bool) -> int:
    """Write the recorded row errors page by page; returns how many rows they are about."""
    after = 0
    rows = 0
    previous: int | None = None
    while True:
        async with ctx.unit() as uow:
            page = await imports.rejected_rows(uow, ctx.task.id, after_id=after, limit=PAGE)
            if cancellable:
                await ctx.learn_cancel(uow)
        if cancellable:
            ctx.check_cancelled()
        if not page:
            return rows
        after = page[-1].id
        for line in page:  # one row's problems are recorded together
            rows += line.row != previous
            previous = line.row
        await asyncio.to_thread(writer.write_rows, [_line(r) for r in page])


def _note(row: int, message: str) -> dict[str, Any]:
    return {"row": row, "column": None, "value": None, "message": message}


def _line(line: imports.RejectedRow) -> dict[str, Any]:
    return {"row": line.row, "column": line.column, "value": line.value, "message": line.message}
