"""The error report of an import: every rejected row, stored as the task's report file."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

from service.bulk.rows import ERROR_COLUMNS
from service.bulk.writers import CONTENT_TYPES, open_writer
from service.clock import utcnow
from service.db.engine import session_scope
from service.db.repositories.store import ImportLedger
from service.usecases import files as file_usecases, task_files
from worker.context import HandlerContext

PAGE = 5000


async def write_error_report(
    ctx: HandlerContext, *, stopped_after: int, note: str | None
) -> UUID | None:
    """Write the report (CSV) when there are rejected rows or the run stopped early."""
    task_id = ctx.task.id
    async with session_scope(ctx.sessionmaker) as session:
        first = await ImportLedger(session).errors(task_id, after_id=0, limit=1)
    if not first and note is None:
        return None
    key = f"reports/{task_id}/errors.csv"
    store = ctx.resources.store
    opened = store.open_write(key, CONTENT_TYPES["csv"])
    stream = await asyncio.to_thread(opened.__enter__)
    try:
        writer = open_writer(stream, "csv", ERROR_COLUMNS)
        after = 0
        while True:
            async with session_scope(ctx.sessionmaker) as session:
                rows = await ImportLedger(session).errors(task_id, after_id=after, limit=PAGE)
            if not rows:
                break
            after = rows[-1].id
            await asyncio.to_thread(writer.write_rows, [_line(r) for r in rows])
        if note is not None:
            writer.write_row(
                {
                    "row": stopped_after,
                    "column": None,
                    "value": None,
                    "message": f"import stopped after this row: {note}",
                }
            )
        await asyncio.to_thread(writer.close)
    finally:
        await asyncio.to_thread(opened.__exit__, None, None, None)
    async with session_scope(ctx.sessionmaker) as session:
        view = await task_files.register_output(
            session,
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


def _line(row: Any) -> dict[str, Any]:
    return {"row": row.row_number, "column": row.column, "value": row.value, "message": row.message}
