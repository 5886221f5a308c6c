"""An import shows how far it is while it runs: a percentage from the share of the file read
(rows for XLSX), and seconds left once a rate is known. Both databases, local store.

A gate holds one batch in the sink, so the test looks at the task at a known point.
"""

from __future__ import annotations

import asyncio
import io
from typing import Any

import httpx
import openpyxl
import pytest

from tests.integration.bulk.support import ALICE, TASKS, GatedSink, finished, render, start_import
from worker import wiring

BATCH = 2000
BATCHES = 5
HELD = 3  #: held before it is written: two batches of five are in, and reported
ROWS = [
    {
        "sku": f"P-{n:06d}",
        "name": f"Item number {n} of the progress test",
        "price": "1.00",
        "currency": "EUR",
        "stock": n,
    }
    for n in range(1, BATCH * BATCHES + 1)
]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"progress_interval_seconds": 0}  # every batch's report is written


@pytest.fixture
def sink(monkeypatch: pytest.MonkeyPatch) -> GatedSink:
    gated = GatedSink(HELD)
    monkeypatch.setattr(wiring.Connections, "sink", lambda self, params: gated)
    return gated


def excel_workbook(rows: list[dict[str, Any]]) -> bytes:
    """A workbook as Excel saves it: its sheet says how many rows it holds (<dimension>)."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(list(rows[0]))
    for row in rows:
        sheet.append(list(row.values()))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
async def test_progress_and_time_left_while_the_import_runs(
    embedded: httpx.AsyncClient, sink: GatedSink, fmt: str
) -> None:
    if fmt == "csv":  # progress by bytes: far more than the reader's buffers hold
        content = render("product", fmt, ROWS)
        assert len(content) > 8 * 64 * 1024
    else:  # by rows: the workbook is read whole before its first row
        content = excel_workbook(ROWS)
    task = await start_import(embedded, "product", f"products.{fmt}", content, batchSize=BATCH)
    await asyncio.wait_for(sink.reached.wait(), timeout=60)

    running = (await embedded.get(f"{TASKS}/{task['id']}", headers=ALICE)).json()
    assert running["status"] == "processing"
    assert running["processedItems"] == BATCH * (HELD - 1)
    # 2 of 5 batches read: 40 % of the rows; by bytes a little more (buffers read ahead)
    assert 40 <= running["progress"] <= 60, running["progress"]
    assert running["result"]["etaSeconds"] is not None
    assert running["result"]["etaSeconds"] >= 0
    assert running["result"]["rowsPerSecond"] > 0

    sink.gate.set()
    done = await finished(embedded, task["id"])
    assert done["status"] == "completed", done
    assert (done["progress"], done["processedItems"]) == (100, len(ROWS))


async def test_a_workbook_that_does_not_say_its_size_reports_a_rate_but_no_percentage(
    embedded: httpx.AsyncClient, sink: GatedSink
) -> None:
    content = render("product", "xlsx", ROWS)  # openpyxl's write-only mode: no <dimension>
    task = await start_import(embedded, "product", "products.xlsx", content, batchSize=BATCH)
    await asyncio.wait_for(sink.reached.wait(), timeout=60)

    running = (await embedded.get(f"{TASKS}/{task['id']}", headers=ALICE)).json()
    assert running["processedItems"] == BATCH * (HELD - 1)
    assert running["progress"] == 0  # not a guess
    assert running["result"]["etaSeconds"] is None
    assert running["result"]["rowsPerSecond"] > 0
    sink.gate.set()
    assert (await finished(embedded, task["id"]))["progress"] == 100
