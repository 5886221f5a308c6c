"""Imports that cannot be turned into amplifiers (issue 9 §5): a flood of bad rows stops at
maxErrors with a bounded report, a malformed file fails at once without retries, a huge cell
is a row error, and a cancel lands inside a long batch and while the report is written.
Both databases, local store; the uploads are the attacker's files of the issue, or smaller
ones of the same kind."""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import re
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import func, select

from service.bootstrap import Resources
from service.db.engine import session_scope
from service.db.repositories.store import ImportLedger
from service.db.tables import row_errors_table
from service.usecases import imports as import_usecases
from tests.fixtures.app import wait_until
from tests.integration.bulk.support import (
    ALICE,
    TASKS,
    download,
    export,
    finished,
    import_file,
    render,
    start_import,
)
from tests.unit.bulk import hostile
from worker.handlers import reports

PRODUCT: dict[str, Any] = {"name": "Shoe", "price": "1.00", "currency": "EUR", "stock": 1}


def resources_of(client: httpx.AsyncClient) -> Resources:
    return client.app.state.resources  # type: ignore[attr-defined,no-any-return]


async def error_rows(client: httpx.AsyncClient, task_id: str) -> int:
    """Rows of the task in the row-error table: what an error flood grows."""
    async with session_scope(resources_of(client).sessionmaker) as session:
        stmt = select(func.count()).where(row_errors_table.c.task_id == UUID(task_id))
        return int((await session.execute(stmt)).scalar_one())


async def report_lines(client: httpx.AsyncClient, task_id: str) -> list[list[str]]:
    """The error report's lines, each as its cells: row, column, value, message."""
    content = (await download(client, task_id, "errorReport")).decode()
    return list(csv.reader(io.StringIO(content)))


class TestMaxErrors:
    async def test_the_gzip_flood_of_the_issue_stops_after_a_thousand_and_one(
        self, embedded: httpx.AsyncClient
    ) -> None:
        # 5.9 KB, 3,000,000 rows of one value: it wrote 2.95M error rows (440 MB) before
        upload = hostile.one_value_rows_gzip(3_000_000)
        assert len(upload) < 8_000
        task = await import_file(embedded, "product", "p.csv.gz", upload)

        assert task["status"] == "failed", task
        assert task["attempts"] == 1  # not retried: reading it again would stop the same way
        assert task["errorMessage"] == (
            "stopped after 1,001 rejected rows, more than maxErrors (1,000); "
            "rows after 1,001 were not read"
        )
        assert (task["processedItems"], task["failedItems"]) == (1001, 1001)
        assert task["result"]["stoppedAt"] == 1001
        assert await error_rows(embedded, task["id"]) == 1001
        lines = await report_lines(embedded, task["id"])
        assert len(lines) == 1 + 1001 + 1  # header, the rejected rows, why it stopped
        assert lines[1] == ["1", "", "", "row has 1 values but the header has 5 columns"]
        assert lines[-1] == [
            "1001",
            "",
            "",
            f"import stopped after this row: {task['errorMessage']}",
        ]

    async def test_rows_written_before_the_stop_stay_and_the_report_lists_no_more_than_allowed(
        self, embedded: httpx.AsyncClient
    ) -> None:
        taken = [{"sku": f"T-{n}", **PRODUCT} for n in range(5)]
        await import_file(embedded, "product", "p.csv", render("product", "csv", taken))
        fresh = [{"sku": f"F-{n}", **PRODUCT} for n in range(5)]
        # one batch: five new rows and five whose keys the store has (found by the sink)
        content = render("product", "csv", fresh + taken)
        task = await import_file(embedded, "product", "p.csv", content, maxErrors=2, batchSize=10)

        assert task["status"] == "failed", task
        assert task["errorMessage"].startswith(
            "stopped after 5 rejected rows, more than maxErrors (2)"
        )
        assert (task["succeededItems"], task["failedItems"]) == (5, 5)
        _, exported = await export(embedded, "product", format="csv")
        skus = [line.split(",")[0] for line in exported.decode().splitlines()[1:]]
        assert skus == sorted(r["sku"] for r in fresh + taken)  # the five new rows are in
        lines = await report_lines(embedded, task["id"])
        assert [line[0] for line in lines[1:4]] == ["6", "7", "8"]
        assert lines[4] == ["10", "", "", "2 more rejected rows are not listed (maxErrors)"]
        assert lines[5][3].startswith("import stopped after this row: stopped after 5")
        assert len(lines) == 6

    async def test_max_errors_zero_takes_no_bad_row_and_a_clean_file_still_completes(
        self, embedded: httpx.AsyncClient
    ) -> None:
        good = render("product", "csv", [{"sku": "G-1", **PRODUCT}])
        done = await import_file(embedded, "product", "p.csv", good, maxErrors=0)
        assert (done["status"], done["succeededItems"]) == ("completed", 1)
        bad = b"sku,name,price,currency\nB-1,Shoe,-1,EUR\nB-2,Shoe,1,EUR\n"
        failed = await import_file(embedded, "product", "p.csv", bad, maxErrors=0)
        assert failed["status"] == "failed"
        assert failed["result"]["stoppedAt"] == 1

    async def test_an_unreasonable_max_errors_is_refused_when_the_task_is_created(
        self, embedded: httpx.AsyncClient
    ) -> None:
        body = {
            "taskType": "import",
            "entityType": "product",
            "fileName": "p.csv",
            "params": {"maxErrors": "all"},
        }
        created = await embedded.post(TASKS, json=body, headers=ALICE)
        assert created.status_code == 422
        assert created.json()["errors"][0]["field"] == "params.maxErrors"


def _workbook_of_garbage() -> bytes:
    return b"PK\x03\x04" + b"\x00" * 200


def _latin1_after_the_head() -> bytes:
    rows = "".join(f"S-{n},Shoe,1.00,EUR\n" for n in range(5000))
    return ("sku,name,price,currency\n" + rows + "S-x,Café,1.00,EUR\n").encode("latin-1")


#: (file name, content, what the failure says): each a file the worker cannot read.
MALFORMED: dict[str, tuple[str, bytes, str]] = {
    "billion-laughs": ("b.xlsx", hostile.workbook_bytes(hostile.laughing_sheet()), "DTD"),
    "bad-zip": ("b.xlsx", _workbook_of_garbage(), "not a valid XLSX workbook"),
    "truncated-gzip": (
        "p.csv.gz",
        gzip.compress(
            b"sku,name,price,currency\n"
            + b"".join(b"S-%d,Shoe,1.00,EUR\n" % n for n in range(50_000))
        )[:20_000],
        "damaged or truncated",
    ),
    "not-utf8": ("p.csv", _latin1_after_the_head(), "not UTF-8"),
    "csv-field-limit": (
        "p.csv",
        b'sku,name,price,currency\nA,"' + b"x\n" * 70_000 + b'",1,EUR\n',
        "closing quote missing",
    ),
    "json-array": ("p.jsonl", b'[{"sku": "A"},\n{"sku": "B"}]\n', "not JSON Lines"),
    "not-well-formed-sheet": (
        "b.xlsx",
        hostile.workbook_bytes([hostile.SHEET_START.encode(), b"<sheetData><row>"]),
        "not well-formed",
    ),
}


class TestMalformedFiles:
    @pytest.mark.parametrize("case", sorted(MALFORMED))
    async def test_fails_at_once_without_retries(
        self, embedded: httpx.AsyncClient, case: str
    ) -> None:
        name, content, says = MALFORMED[case]
        task = await import_file(embedded, "product", name, content)
        assert task["status"] == "failed", task
        assert task["attempts"] == 1, task
        assert says in task["errorMessage"]


class TestHugeCells:
    async def test_a_200_mb_workbook_cell_is_a_row_error(self, embedded: httpx.AsyncClient) -> None:
        content = hostile.workbook_bytes(hostile.huge_cell_sheet(200_000_000))
        task = await import_file(embedded, "product", "b.xlsx", content)
        assert task["status"] == "completed", task
        assert task["failedItems"] == 1
        (line,) = (await report_lines(embedded, task["id"]))[1:]
        assert line == ["1", "name", "x" * 199 + "…", "name is longer than 32767 characters"]


class TestBlankInput:
    async def test_the_blank_line_bomb_fails_at_once(self, embedded: httpx.AsyncClient) -> None:
        # 261 KB, 256 MiB of newlines after the header: 306 s of CPU, no row, no end
        upload = hostile.repeated_gzip(256)
        assert len(upload) < 270_000
        task = await import_file(embedded, "product", "p.csv.gz", upload)

        assert task["status"] == "failed", task
        assert task["attempts"] == 1  # the same file would be refused again
        assert re.fullmatch(
            r"after row 0: the file is mostly blank: [0-9,]+ bytes of blank lines "
            r"or empty rows from [0-9,]+ bytes of compressed upload, more than 100 times as "
            r"many \(the import's limit; a compression bomb\?\)",
            task["errorMessage"],
        ), task["errorMessage"]
        assert (task["processedItems"], task["result"]["stoppedAt"]) == (0, 0)

    async def test_a_workbook_of_empty_rows_fails_at_once(
        self, embedded: httpx.AsyncClient
    ) -> None:
        upload = hostile.workbook_bytes(hostile.empty_rows_sheet(5_000_000))
        task = await import_file(embedded, "product", "b.xlsx", upload)
        assert (task["status"], task["attempts"]) == ("failed", 1), task
        assert "the file is mostly blank" in task["errorMessage"]


class TestBlankInputUnderARaisedLimit:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"import_max_blank_ratio": 5000}

    async def test_the_setting_lets_a_mostly_blank_file_through(
        self, embedded: httpx.AsyncClient
    ) -> None:
        row = b"A-1,Shoe,1.00,EUR\n"
        upload = hostile.repeated_gzip(32, head=hostile.PRODUCT_HEADER + row)
        task = await import_file(embedded, "product", "p.csv.gz", upload)
        assert (task["status"], task["succeededItems"]) == ("completed", 1), task


class TestCancelInsideABatch:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"import_max_blank_ratio": 100_000}  # the file below would be refused

    async def test_a_cancel_stops_a_reader_in_a_long_run_of_empty_rows(
        self, embedded: httpx.AsyncClient
    ) -> None:
        # 128 MiB of rows of empty quoted cells (read one by one) in 260 KB: seconds of
        # reading in one batch
        upload = hostile.repeated_gzip(128, b'"","","",""\r\n')
        task = await start_import(embedded, "product", "p.csv.gz", upload)

        async def processing() -> bool:
            current = (await embedded.get(f"{TASKS}/{task['id']}", headers=ALICE)).json()
            return bool(current["status"] == "processing")

        await wait_until(processing, timeout=30)
        cancel = await embedded.post(f"{TASKS}/{task['id']}/cancel", headers=ALICE)
        assert cancel.status_code == 200, cancel.text
        done = await finished(embedded, task["id"])
        assert done["status"] == "cancelled", done
        assert done["result"]["stoppedAt"] == 0
        lines = await report_lines(embedded, task["id"])
        assert lines[1:] == [
            ["0", "", "", "import stopped after this row: cancelled; rows after 0 were not read"]
        ]


class GatedLedger(ImportLedger):
    """The ledger, holding the error report's second page until `gate` opens."""

    reached: asyncio.Event
    gate: asyncio.Event

    async def errors(self, task_id: UUID, *, after_id: int, limit: int) -> Any:
        if after_id > 0:  # before any statement: the session holds no connection yet
            GatedLedger.reached.set()
            await GatedLedger.gate.wait()
        return await super().errors(task_id, after_id=after_id, limit=limit)


@pytest.fixture
def gated_report(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[GatedLedger]]:
    GatedLedger.reached = asyncio.Event()
    GatedLedger.gate = asyncio.Event()
    monkeypatch.setattr(import_usecases, "ImportLedger", GatedLedger)
    monkeypatch.setattr(reports, "PAGE", 2)
    yield GatedLedger
    GatedLedger.gate.set()


class TestCancelWhileTheReportIsWritten:
    async def test_the_cancel_ends_the_report_and_no_partial_report_is_kept(
        self, embedded: httpx.AsyncClient, gated_report: type[GatedLedger]
    ) -> None:
        bad = b"sku,name,price,currency\n" + b"".join(b"S-%d,Shoe,-1,EUR\n" % n for n in range(6))
        task = await start_import(embedded, "product", "p.csv", bad)
        await asyncio.wait_for(gated_report.reached.wait(), timeout=30)
        cancel = await embedded.post(f"{TASKS}/{task['id']}/cancel", headers=ALICE)
        assert cancel.status_code == 200, cancel.text
        gated_report.gate.set()

        done = await finished(embedded, task["id"])
        assert done["status"] == "cancelled", done
        assert done["failedItems"] == 6  # the rows were all read before the report began
        link = await embedded.get(
            f"{TASKS}/{task['id']}/download", params={"file": "errorReport"}, headers=ALICE
        )
        assert link.status_code == 404
        store = resources_of(embedded).store
        assert not await asyncio.to_thread(store.exists, f"reports/{task['id']}/errors.csv")
