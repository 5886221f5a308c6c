"""Import: stream the uploaded file through the entity's schema into a sink, batch by batch.

Each batch is one transaction: the sink's writes (local store), the batch's row errors and the
checkpoint. A retried or resumed run reopens the file after the checkpoint's row, so no row
is written twice. Reading and validation run in a thread; the event loop keeps heartbeating.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable
from typing import Any, BinaryIO, cast

from pydantic.alias_generators import to_camel

from service.bulk import params as bulk_params, streams
from service.bulk.batches import Options, Outcome, dedupe_batch, duplicate, first_rows
from service.bulk.errors import BadFile, TooManyRejectedRows
from service.bulk.eta import Eta
from service.bulk.pipeline import Batches, CheckedBatch
from service.bulk.readers import Reader, open_reader
from service.bulk.rows import Candidate, RowError
from service.bulk.schemas import SCHEMAS
from service.bulk.schemas.base import Schema
from service.clock import utcnow
from service.domain.errors import PermanentFailure, TaskCancelled
from service.sinks.base import Sink
from service.usecases import imports
from service.usecases.imports import InputFile, Totals
from worker.context import HandlerContext
from worker.handlers import reports, storage
from worker.handlers.watching import CancelWatch
from worker.registry import HandlerRegistry


def schema_for(entity: str | None) -> Schema[Any]:
    schema = SCHEMAS.get(entity or "")
    if schema is None:
        raise PermanentFailure(
            f"entityType must be one of {', '.join(sorted(SCHEMAS))}, got {entity!r}"
        )
    return schema


class ImportRun:
    """One run of one import task (a retry starts a new run from the checkpoint)."""

    def __init__(self, ctx: HandlerContext, params: bulk_params.ImportParams) -> None:
        self.ctx = ctx
        self.params = params
        self.schema = schema_for(ctx.task.entity_type)
        self.limits = ctx.read_limits
        self.options = Options(params.mode, params.skip_duplicates, params.validate_only)
        self.seen: set[int] = set()  # dry runs write nothing: key hashes find repeats in the file
        self.started = time.monotonic()
        self.rows_this_run = 0
        self.watch = CancelWatch(ctx)

    async def run(self) -> None:
        async with self.ctx.unit() as uow:
            file_row = await imports.input_file(uow, self.ctx.task)
            totals = await imports.load_totals(uow, self.ctx.task.id)
        sink = self.ctx.connector.sink(self.params)
        try:
            await self._read(file_row, sink, totals)
        finally:
            await sink.close()

    async def _read(self, file_row: InputFile, sink: Sink, totals: Totals) -> None:
        """Import the file; however it stops after its header (done, cancelled, too many
        rejected rows, a damaged file), the error report says so and the result shows it."""
        try:
            async with storage.reading(self.ctx.store, file_row.key) as stream:
                await self._import(stream, file_row, sink, totals)
        except TaskCancelled:
            note = f"cancelled; rows after {totals.last_row} were not read"
            await self._finish(totals, stopped=note, cancellable=False)
            raise
        except TooManyRejectedRows as error:
            await self._finish(totals, stopped=error.detail)
            raise
        except _DamagedAfter as damaged:
            await self._finish(totals, stopped=damaged.detail)
            raise
        await self._finish(totals, stopped=None)

    async def _import(
        self, stream: BinaryIO, file_row: InputFile, sink: Sink, totals: Totals
    ) -> None:
        counted = streams.Counted(stream)
        buffered = cast(BinaryIO, io.BufferedReader(counted, streams.CHUNK))
        reader = await self.watch.result(
            asyncio.to_thread(self._open, buffered, file_row, totals.last_row)
        )
        done = _share_done(reader, counted, file_row.size)
        try:
            await self._loop(Batches(reader, self.schema), sink, totals, done)
        finally:
            await asyncio.to_thread(reader.close)

    def _open(self, stream: BinaryIO, file_row: InputFile, start_after: int) -> Reader:
        try:
            reader = open_reader(
                stream,
                fmt=self.params.format,
                filename=file_row.file_name,
                limits=self.limits,
                delimiter=self.params.delimiter,
                start_after=start_after,
                stop=self.watch.stop,
            )
            self.schema.check_header(reader.columns)
        except BadFile as error:
            raise PermanentFailure(f"{file_row.file_name}: {error}") from error
        return reader

    async def _loop(
        self,
        batches: Batches,
        sink: Sink,
        totals: Totals,
        done: Callable[[int], float | None],
    ) -> None:
        """Write batch after batch; the next one is read and validated (in a thread) while
        the current one is written, so parsing overlaps the database's work. `done` is the
        share of the file read up to a row, for progress."""
        rows = self.params.batch_size
        eta = Eta()

        def read(pending_rejects: int) -> asyncio.Future[CheckedBatch | None]:
            # a batch ends at the rejected row that would take the import past maxErrors
            room = self.params.max_errors + 1 - totals.failed - pending_rejects
            work = asyncio.to_thread(batches.next, rows, max_rejected=max(room, 1))
            return asyncio.ensure_future(work)

        ahead = read(0)
        try:
            while True:
                try:
                    batch = await self.watch.result(ahead)
                except BadFile as error:
                    raise _DamagedAfter(f"after row {totals.last_row}: {error}") from error
                if batch is None:
                    return
                share = done(batch.last_row)  # before the next batch moves the reader on
                ahead = read(len({e.row for e in batch.errors}))
                await self._commit(sink, totals, *batch)
                self._check_rejected(totals)
                percent, seconds_left = (None, None)
                if share is not None:
                    percent, seconds_left = eta.update(share, time.monotonic())
                await self.ctx.report(
                    progress=percent,
                    processed_items=totals.processed,
                    succeeded_items=totals.succeeded,
                    failed_items=totals.failed,
                    result={**self._figures(totals), "etaSeconds": seconds_left},
                )
        finally:
            self.watch.stop.set()  # a read-ahead nobody will use stops at its next chunk
            await _settle(ahead)  # the reader must be idle before it is closed

    def _check_rejected(self, totals: Totals) -> None:
        limit = self.params.max_errors
        if totals.failed > limit:
            raise TooManyRejectedRows(
                f"stopped after {totals.failed:,} rejected rows, more than maxErrors "
                f"({limit:,}); rows after {totals.last_row:,} were not read"
            )

    async def _commit(
        self,
        sink: Sink,
        totals: Totals,
        candidates: list[Candidate],
        errors: list[RowError],
        last: int,
    ) -> None:
        batch, early = dedupe_batch(candidates, self.options)
        if self.options.dry_run:
            batch = self._unseen(batch, early)
        async with self.ctx.unit() as uow:
            outcome = await sink.write(
                uow.session,
                self.schema.entity,
                self.ctx.task.id,
                totals.batches + 1,
                batch,
                self.options,
            )
            rejected = errors + early.errors + outcome.errors
            # the report lists maxErrors + 1 rejected rows at most; later ones are counted
            listed = first_rows(rejected, self.params.max_errors + 1 - totals.failed)
            totals.batches += 1
            totals.processed += last - totals.last_row
            totals.last_row = last
            totals.created += outcome.created
            totals.updated += outcome.updated + early.updated
            totals.skipped += outcome.skipped + early.skipped
            totals.failed += len({e.row for e in rejected})
            await self.ctx.learn_cancel(uow)  # a cancel stops the import after this batch
            await imports.record_batch(uow, self.ctx.task.id, listed, totals, now=utcnow())
        self.rows_this_run += len(candidates) + len(errors)

    def _unseen(self, batch: list[Candidate], early: Outcome) -> list[Candidate]:
        fresh = []
        for candidate in batch:
            digest = hash(candidate.key)
            if digest in self.seen:
                if self.options.skip_duplicates:
                    early.skipped += 1
                elif self.options.mode == "upsert":
                    early.updated += 1
                else:
                    early.errors.append(duplicate(candidate, "an earlier row of the file"))
                continue
            self.seen.add(digest)
            fresh.append(candidate)
        return fresh

    def _figures(self, totals: Totals) -> dict[str, Any]:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        return {
            **{to_camel(name): value for name, value in totals.as_values().items()},
            "dryRun": self.options.dry_run,
            "rowsPerSecond": round(self.rows_this_run / elapsed, 1),
        }

    async def _finish(
        self, totals: Totals, *, stopped: str | None, cancellable: bool = True
    ) -> None:
        """The final figures, then the error report. A cancel while the report is written
        ends the run there, without a report (one after a cancel is written whole: the
        rejected rows it lists are bounded by maxErrors)."""
        self.ctx.result = {
            **self._figures(totals),
            "stoppedAt": totals.last_row if stopped else None,
        }
        self.ctx.final.update(
            {
                "processed_items": totals.processed,
                "succeeded_items": totals.succeeded,
                "failed_items": totals.failed,
                "total_items": totals.processed if not stopped else None,
            }
        )
        report = await reports.write_error_report(
            self.ctx,
            stopped_after=totals.last_row,
            note=stopped,
            rejected_rows=totals.failed,
            cancellable=cancellable,
        )
        if report is not None:
            self.ctx.result["errorReportFileId"] = str(report)


class _DamagedAfter(PermanentFailure):
    """The file turned out damaged after some of its rows were imported."""


def _share_done(
    reader: Reader, counted: streams.Counted, size: int | None
) -> Callable[[int], float | None]:
    """The share of the file read by the time a row is: by the bytes read of its size
    (compressed bytes for gzip); for XLSX, copied whole before its first row, by rows where
    the workbook says how many it holds. None where neither tells."""
    if reader.format == "xlsx":
        expected = reader.expected_rows
        return (lambda row: row / expected) if expected else (lambda row: None)
    if size:
        return lambda row: counted.consumed / size
    return lambda row: None


async def _settle(future: asyncio.Future[Any]) -> None:
    """Wait for a read-ahead nobody will use, and drop its result or error."""
    if not future.done():
        await asyncio.wait([future])
    if not future.cancelled():
        future.exception()


async def run_import(ctx: HandlerContext) -> None:
    """Import a CSV, JSON Lines or XLSX file (optionally gzip) of one entity type."""
    await ImportRun(ctx, bulk_params.parse(bulk_params.ImportParams, ctx.params)).run()


def register(registry: HandlerRegistry) -> None:
    for entity in SCHEMAS:
        registry.add("import", entity, run_import)
