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
from service.db.repositories.store import ImportLedger
from service.usecases import files as file_usecases, outputs
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
) -> UUID | None:
    """Write the report (CSV) when there are rejected rows or the run stopped early.

    With `cancellable`, each page of rows learns of a cancel in its own transaction and
    a cancel ends the write (TaskCancelled): the partial report is not kept.
    """
    task_id = ctx.task.id
    async with ctx.resources.unit() as uow:
        first = await ImportLedger(uow.session).errors(task_id, after_id=0, limit=1)
    if not first and note is None:
        return None
    key = f"reports/{task_id}/errors.csv"
    store = ctx.resources.store
    async with storage.writing(store, key, CONTENT_TYPES["csv"]) as stream:
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
    async with ctx.resources.unit() as uow:
        view = await outputs.register_output(
            uow,
            store,
            task_id,
            key,
            file_name=f"{ctx.task.entity_type}-import-errors.csv",
            content_type=CONTENT_TYPES["csv"],
            purpose=file_usecases.FilePurpose.ERROR_REPORT,
            policy=file_usecases.FilePolicy.from_settings(ctx.resources.settings),
            now=utcnow(),
        )
    return view.id


async def _write_rows(ctx: HandlerContext, writer: RowWriter, *, cancellable: bool) -> int:
    """Write the recorded row errors page by page; returns how many rows they are about."""
    after = 0
    rows = 0
    previous: int | None = None
    while True:
        async with ctx.resources.unit() as uow:
            page = await ImportLedger(uow.session).errors(ctx.task.id, after_id=after, limit=PAGE)
            if cancellable:
                await ctx.learn_cancel(uow)
        if cancellable:
            ctx.check_cancelled()
        if not page:
            return rows
        after = page[-1].id
        for line in page:  # one row's problems are recorded together
            rows += line.row_number != previous
            previous = line.row_number
        await asyncio.to_thread(writer.write_rows, [_line(r) for r in page])


def _note(row: int, message: str) -> dict[str, Any]:
    return {"row": row, "column": None, "value": None, "message": message}


def _line(row: Any) -> dict[str, Any]:
    return {"row": row.row_number, "column": row.column, "value": row.value, "message": row.message}
