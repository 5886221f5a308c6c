"""A failed or cancelled export publishes nothing: no output file registered, and no bytes
(not even a temporary file) left in the store. Both databases, local store and S3.

The export's source is the real local store's pages, followed by a fault (failure) or paced
so that the cancel lands while pages are still being written (cancel).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from service.bootstrap import Resources
from service.domain.errors import PermanentFailure
from service.sinks.base import Selection
from service.sinks.local import LocalSource
from service.storage.base import FileStore
from service.storage.local import LocalFileStore
from service.storage.s3 import S3FileStore
from tests.fixtures.app import wait_until
from tests.integration.bulk.support import ALICE, TASKS, finished, import_file, render

pytestmark = pytest.mark.parametrize("storage", ["local", "s3"], indirect=True)

ROWS = [
    {"sku": f"P-{n:04d}", "name": f"Item {n}", "price": "1.00", "currency": "EUR", "stock": n}
    for n in range(1, 21)
]
real_pages = LocalSource.pages


def stored_under(store: FileStore, prefix: str) -> list[str]:
    """Every object or file the store holds under `prefix`, temporary ones included."""
    if isinstance(store, LocalFileStore):
        folder = store.root / prefix
        return [str(p) for p in folder.rglob("*") if p.is_file()] if folder.exists() else []
    assert isinstance(store, S3FileStore)
    listed = store.client.list_objects_v2(Bucket=store.bucket, Prefix=prefix)
    return [item["Key"] for item in listed.get("Contents", [])]


async def start_export(client: httpx.AsyncClient) -> str:
    await import_file(client, "product", "p.csv", render("product", "csv", ROWS))
    body = {"taskType": "export", "entityType": "product", "params": {"batchSize": 5}}
    created = await client.post(TASKS, json=body, headers=ALICE)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def assert_nothing_published(client: httpx.AsyncClient, task_id: str) -> None:
    link = await client.get(f"{TASKS}/{task_id}/download", headers=ALICE)
    assert link.status_code == 404, link.text
    task = (await client.get(f"{TASKS}/{task_id}", headers=ALICE)).json()
    assert task["outputFileId"] is None
    resources: Resources = client.app.state.resources  # type: ignore[attr-defined]
    assert await asyncio.to_thread(stored_under, resources.store, f"exports/{task_id}/") == []


class TestFailedExport:
    async def test_a_fault_after_some_pages_publishes_no_partial_file(
        self, embedded: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        async def broken(source: LocalSource, selection: Selection) -> AsyncIterator[Any]:
            pages = real_pages(source, selection)
            yield await anext(pages)
            yield await anext(pages)  # written while this one is fetched: bytes in the spool
            raise PermanentFailure("the source broke")

        monkeypatch.setattr(LocalSource, "pages", broken)
        task = await finished(embedded, await start_export(embedded))
        assert (task["status"], task["errorMessage"]) == ("failed", "the source broke")
        await assert_nothing_published(embedded, task["id"])


class TestCancelledExport:
    async def test_a_cancel_between_pages_publishes_no_partial_file(
        self, embedded: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        written = asyncio.Event()

        async def paced(source: LocalSource, selection: Selection) -> AsyncIterator[Any]:
            async for page in real_pages(source, selection):
                first = list(page)
                break
            for _ in range(2_000):  # until the cancel is seen: the same page over and over
                yield first
                written.set()
                await asyncio.sleep(0.02)

        monkeypatch.setattr(LocalSource, "pages", paced)
        task_id = await start_export(embedded)

        async def writing() -> bool:
            current = (await embedded.get(f"{TASKS}/{task_id}", headers=ALICE)).json()
            return written.is_set() and current["processedItems"] > 0

        await wait_until(writing, timeout=30)
        cancel = await embedded.post(f"{TASKS}/{task_id}/cancel", headers=ALICE)
        assert cancel.status_code == 200, cancel.text
        task = await finished(embedded, task_id)
        assert task["status"] == "cancelled", task
        await assert_nothing_published(embedded, task_id)
