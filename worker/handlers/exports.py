"""Export: page records out of a source and stream them into a CSV, JSON Lines or XLSX file.

The file is written under a key derived from the task id, so a retried run overwrites its
own earlier attempt instead of leaving a second file behind.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx
from sqlalchemy import Integer, cast

from service.bulk import params as bulk_params
from service.bulk.formats.base import RowWriter
from service.bulk.schemas import SCHEMAS
from service.bulk.writers import CONTENT_TYPES, file_name, open_writer
from service.clock import utcnow
from service.db.engine import session_scope
from service.db.repositories.store import StoreRepository
from service.db.tables import store_records_table
from service.domain.errors import PermanentFailure, RetryLater
from service.usecases import task_files
from service.usecases.files import FilePolicy
from worker.context import HandlerContext
from worker.handlers.imports import schema_for
from worker.registry import HandlerRegistry

#: One page of records; iterated once, by the writer (in its thread).
Page = Iterable[dict[str, Any]]


def _conditions(params: bulk_params.ExportParams) -> list[Any]:
    data = store_records_table.c.data
    conditions: list[Any] = []
    if params.key_prefix:
        conditions.append(store_records_table.c.key.startswith(params.key_prefix, autoescape=True))
    for field, value in params.filters.items():
        if isinstance(value, bool):
            conditions.append(data[field].as_boolean() == value)
        elif isinstance(value, int):
            conditions.append(cast(data[field].as_string(), Integer) == value)
        else:
            conditions.append(data[field].as_string() == value)
    return conditions


async def local_pages(
    ctx: HandlerContext, entity: str, params: bulk_params.ExportParams
) -> AsyncIterator[Page]:
    """Records of the local store in key order, one keyset page per transaction."""
    conditions = _conditions(params)
    after: str | None = None
    while True:
        async with session_scope(ctx.sessionmaker) as session:
            page = await StoreRepository(session).page_json(
                entity, after=after, limit=params.batch_size, conditions=conditions
            )
        if page is None:
            return
        after = page.last_key
        yield page  # one JSON text, parsed where the file is written


async def service_pages(
    ctx: HandlerContext, entity: str, params: bulk_params.ExportParams
) -> AsyncIterator[Page]:
    """Records of the owning service through Dapr service invocation, page by page.

    Contract: POST .../method/{method} {"entity", "filters", "after", "limit"} answers
    {"records": [...], "next": <cursor or null>}.
    """
    settings = ctx.resources.settings
    headers = {"dapr-api-token": settings.dapr_api_token} if settings.dapr_api_token else {}
    path = f"/v1.0/invoke/{params.target_service}/method/{(params.method or '').lstrip('/')}"
    after: Any = None
    async with httpx.AsyncClient(
        base_url=settings.dapr_http_endpoint, headers=headers, timeout=60
    ) as client:
        while True:
            body = {
                "entity": entity,
                "filters": params.filters,
                "after": after,
                "limit": params.batch_size,
            }
            try:
                response = await client.post(path, json=body)
            except httpx.HTTPError as error:
                raise RetryLater(f"source service unreachable: {error}") from error
            if response.status_code >= 500:
                raise RetryLater(f"source service answered {response.status_code}")
            if response.status_code >= 400:
                raise PermanentFailure(f"source service refused: {response.text[:300]}")
            answer = response.json()
            records = answer.get("records") or []
            if records:
                yield records
            after = answer.get("next")
            if after is None or not records:
                return


async def run_export(ctx: HandlerContext) -> None:
    """Export one entity type to a file in storage; the task's output is its download."""
    params = bulk_params.parse(bulk_params.ExportParams, ctx.params)
    schema = schema_for(ctx.task.entity_type)
    columns = schema.select(params.columns)
    name = params.file_name or file_name(f"{schema.entity}-export", params.format, gzip=params.gzip)
    key = f"exports/{ctx.task.id}/{file_name('export', params.format, gzip=params.gzip)}"
    content_type = "application/gzip" if params.gzip else CONTENT_TYPES[params.format]
    pages = (local_pages if params.sink == "local" else service_pages)(ctx, schema.entity, params)
    store = ctx.resources.store
    started = time.monotonic()
    opened = store.open_write(key, content_type)
    stream = await asyncio.to_thread(opened.__enter__)
    try:
        writer = open_writer(stream, params.format, columns, gzip=params.gzip)
        written = await _write_pages(ctx, writer, pages, started)
        await asyncio.to_thread(writer.close)
    finally:
        await asyncio.to_thread(opened.__exit__, None, None, None)
    async with session_scope(ctx.sessionmaker) as session:
        view = await task_files.register_output(
            session,
            store,
            ctx.task.id,
            key,
            file_name=name,
            content_type=content_type,
            policy=FilePolicy.from_settings(ctx.resources.settings),
            now=utcnow(),
        )
    ctx.result = {
        "rowsWritten": written,
        "format": params.format,
        "gzip": params.gzip,
        "outputFileId": str(view.id),
        "columns": [c.name for c in columns],
    }
    ctx.final.update(
        processed_items=written,
        succeeded_items=written,
        total_items=written,
        failed_items=0,
        output_file_id=str(view.id),
    )


async def _write_pages(
    ctx: HandlerContext, writer: RowWriter, pages: AsyncIterator[Page], started: float
) -> int:
    """Write page after page (in a thread) while the next page is fetched; rows written."""
    written = 0
    writing: asyncio.Future[int] | None = None
    try:
        async for page in pages:
            if writing is not None:
                written += await writing
                await _progress(ctx, written, started)
            writing = asyncio.ensure_future(asyncio.to_thread(writer.write_rows, page))
        if writing is not None:
            written += await writing
            writing = None
            await _progress(ctx, written, started)
    finally:
        if writing is not None:  # the writer must be idle before the file is closed
            await asyncio.wait([writing])
            if not writing.cancelled():
                writing.exception()
    return written


async def _progress(ctx: HandlerContext, written: int, started: float) -> None:
    rate = round(written / max(time.monotonic() - started, 1e-6), 1)
    await ctx.report(
        processed_items=written,
        succeeded_items=written,
        result={"rowsWritten": written, "rowsPerSecond": rate},
    )


def register(registry: HandlerRegistry) -> None:
    for entity in SCHEMAS:
        registry.add("export", entity, run_export)
