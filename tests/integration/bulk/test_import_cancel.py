"""Cancelling an import while it runs: it stops after the current batch, keeps what it wrote,
says where it stopped, and a retry goes on from there. Both databases, local store.

The import's sink is the real local store behind a gate that holds one batch until the test
has asked for the cancel, so the stop lands on a known batch however loaded the machine is.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.fixtures.app import wait_until
from tests.integration.bulk.support import (
    ALICE,
    TASKS,
    GatedSink,
    download,
    export,
    finished,
    render,
    start_import,
)
from worker import wiring

BATCH = 5
BATCHES = 4
HELD = 2  #: the batch the gate holds; the cancel arrives while it waits
ROWS = [
    {"sku": f"P-{n:04d}", "name": f"Item {n}", "price": "1.00", "currency": "EUR", "stock": n}
    for n in range(1, BATCH * BATCHES + 1)
]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # progress writes held back for a minute: the cancel must be learnt from the batch's own
    # transaction (not from a progress write or the once-a-second check)
    return {"progress_interval_seconds": 60}


@pytest.fixture
def sink(monkeypatch: pytest.MonkeyPatch) -> GatedSink:
    gated = GatedSink(HELD)
    monkeypatch.setattr(wiring.Connections, "sink", lambda self, params: gated)
    return gated


async def cancel_while_held(client: httpx.AsyncClient, sink: GatedSink) -> dict[str, Any]:
    """Start the import, cancel it while batch HELD waits, let that batch go; the final task."""
    content = render("product", "csv", ROWS)
    task = await start_import(client, "product", "products.csv", content, batchSize=BATCH)
    await asyncio.wait_for(sink.reached.wait(), timeout=30)
    running = (await client.get(f"{TASKS}/{task['id']}", headers=ALICE)).json()
    assert running["status"] == "processing"
    assert running["processedItems"] == BATCH * (HELD - 1)
    cancel = await client.post(f"{TASKS}/{task['id']}/cancel", headers=ALICE)
    assert cancel.status_code == 200, cancel.text
    assert cancel.json()["cancelRequested"] is True
    sink.gate.set()
    return await finished(client, task["id"])


async def exported_skus(client: httpx.AsyncClient) -> list[str]:
    _, content = await export(client, "product", format="csv")
    return [line.split(",")[0] for line in content.decode().splitlines()[1:]]


class TestCancelDuringImport:
    async def test_stops_after_the_current_batch_and_keeps_what_it_wrote(
        self, embedded: httpx.AsyncClient, sink: GatedSink
    ) -> None:
        task = await cancel_while_held(embedded, sink)

        stopped = BATCH * HELD
        assert task["status"] == "cancelled", task
        assert sink.batches == list(range(1, HELD + 1))  # no batch after the held one was read
        assert (task["processedItems"], task["succeededItems"], task["failedItems"]) == (
            stopped,
            stopped,
            0,
        )
        assert task["result"]["stoppedAt"] == stopped
        assert task["result"]["created"] == stopped
        assert await exported_skus(embedded) == [r["sku"] for r in ROWS[:stopped]]

        report = (await download(embedded, task["id"], "errorReport")).decode().splitlines()
        assert report[0] == "row,column,value,message"
        assert report[1:] == [
            f"{stopped},,,import stopped after this row: "
            f"cancelled; rows after {stopped} were not read"
        ]

        # the run is over: nothing is written later either
        await asyncio.sleep(0.3)
        assert sink.batches == list(range(1, HELD + 1))
        assert len(await exported_skus(embedded)) == stopped
        again = (await embedded.get(f"{TASKS}/{task['id']}", headers=ALICE)).json()
        assert (again["status"], again["processedItems"]) == ("cancelled", stopped)

    async def test_a_retry_goes_on_after_the_last_batch_without_duplicates(
        self, embedded: httpx.AsyncClient, sink: GatedSink
    ) -> None:
        task = await cancel_while_held(embedded, sink)
        assert task["status"] == "cancelled", task

        retried = await embedded.post(f"{TASKS}/{task['id']}/retry", headers=ALICE)
        assert retried.status_code == 200, retried.text

        async def completed() -> dict[str, Any] | None:
            current = (await embedded.get(f"{TASKS}/{task['id']}", headers=ALICE)).json()
            return current if current["status"] == "completed" else None

        done = await wait_until(completed, timeout=30)
        assert sink.batches == list(range(1, BATCHES + 1))  # each batch once, in order
        assert (done["processedItems"], done["succeededItems"], done["failedItems"]) == (
            len(ROWS),
            len(ROWS),
            0,
        )
        assert done["result"]["stoppedAt"] is None
        assert await exported_skus(embedded) == [r["sku"] for r in ROWS]
