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
from sqlalchemy import ColumnElement, Text, cast, func

from service.bulk import params as bulk_params
from service.bulk.eta import Eta
from service.bulk.formats.base import RowWriter
from service.bulk.schemas import SCHEMAS
from service.bulk.writers import CONTENT_TYPES, file_name, open_writer
from service.clock import utcnow
from service.db.repositories.store import StoreRepository
from service.db.tables import store_records_table
from service.domain.errors import PermanentFailure, RetryLater
from service.usecases import outputs
from service.usecases.files import FilePolicy
from worker.context import HandlerContext
from worker.handlers import storage
from worker.handlers.imports import schema_for
from worker.registry import HandlerRegistry

#: One page of records; iterated once, by the writer (in its thread).
Page = Iterable[dict[str, Any]]


def _conditions(export: bulk_params.Export) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    prefix = export.params.key_prefix
    if prefix:
        # not LIKE: SQLite's ignores the case of ASCII letters, and keys are case-sensitive
        key = store_records_table.c.key
        conditions.append(func.substr(key, 1, len(prefix)) == prefix)
    conditions.extend(_equals(f) for f in export.filters)
    return conditions


def _equals(f: bulk_params.Filter) -> ColumnElement[bool]:
    """The record's field equals the filter's value, compared without a cast to the value's
    type: a stored value of another type just does not match, instead of failing the query
    (PostgreSQL refuses CAST('A-1' AS INTEGER)). Whole numbers and true/false compare as
    their JSON text, text and decimals (stored as JSON strings) as text."""
    field = store_records_table.c.data[f.column.name]
    if isinstance(f.value, bool):
        # PostgreSQL gives the JSON text true/false; SQLite's json_extract turns them into 1/0
        return cast(field, Text).in_(("true", "1") if f.value else ("false", "0"))
    if isinstance(f.value, int):
        return cast(field, Text) == str(f.value)
    text: ColumnElement[str] = field.as_string()
    return text == f.value


async def local_pages(
    ctx: HandlerContext, entity: str, batch_size: int, conditions: list[ColumnElement[bool]]
) -> AsyncIterator[Page]:
    """Records of the local store in key order, one keyset page per transaction."""
    after: str | None = None
    while True:
        async with ctx.resources.unit() as uow:
            page = await StoreRepository(uow.session).page_json(
                entity, after=after, limit=batch_size, conditions=conditions
            )
        if page is None:
            return
        after = page.last_key
        yield page  # one JSON text, parsed where the file is written


async def _count(ctx: HandlerContext, entity: str, conditions: list[ColumnElement[bool]]) -> int:
    async with ctx.resources.unit() as uow:
        return await StoreRepository(uow.session).count(entity, conditions)


async def service_pages(
    ctx: HandlerContext, entity: str, export: bulk_params.Export
) -> AsyncIterator[Page]:
    """Records of the owning service through Dapr service invocation, page by page.

    Contract: POST .../method/{method} {"entity", "filters", "after", "limit"} answers
    {"records": [...], "next": <cursor or null>}. Filter values are sent as the records'
    JSON holds them (a decimal as its text with the column's places, e.g. "12.50").
    """
    params = export.params
    filters = {f.column.name: f.value for f in export.filters}
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
                "filters": filters,
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
    schema = schema_for(ctx.task.entity_type)
    export = bulk_params.parse_export(schema, ctx.params)
    params = export.params
    name = params.file_name or file_name(f"{schema.entity}-export", params.format, gzip=params.gzip)
    key = f"exports/{ctx.task.id}/{file_name('export', params.format, gzip=params.gzip)}"
    content_type = "application/gzip" if params.gzip else CONTENT_TYPES[params.format]
    if params.sink == "local":
        conditions = _conditions(export)
        pace = Pace(await _count(ctx, schema.entity, conditions))
        pages = local_pages(ctx, schema.entity, params.batch_size, conditions)
    else:  # the owning service does not say how many records it has
        pace = Pace(None)
        pages = service_pages(ctx, schema.entity, export)
    await ctx.report(**pace.figures(0))
    store = ctx.resources.store
    async with storage.writing(store, key, content_type) as stream:  # a failure publishes nothing
        writer = open_writer(stream, params.format, export.columns, gzip=params.gzip)
        written = await _write_pages(ctx, writer, pages, pace)
        await asyncio.to_thread(writer.close)
    async with ctx.resources.unit() as uow:
        view = await outputs.register_output(
            uow,
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
