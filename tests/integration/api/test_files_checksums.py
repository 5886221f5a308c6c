"""The SHA-256 of files the service writes itself (export outputs, error reports), on both
stores: it is the hash of the bytes a client downloads, read back from the store."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from tests.integration.bulk.support import ALICE, FILES, download, export, import_file, render

pytestmark = pytest.mark.parametrize("storage", ["local", "s3"], indirect=True)

PRODUCTS = [
    {"sku": "A-1", "name": "Shoe", "price": "12.50", "currency": "EUR", "stock": 3},
    {"sku": "B-2", "name": "Hat", "price": "0.99", "currency": "USD", "stock": 0},
]


async def file_of(client: httpx.AsyncClient, file_id: str) -> dict[str, object]:
    response = await client.get(f"{FILES}/{file_id}", headers=ALICE)
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


async def test_an_export_records_the_sha256_of_the_file_it_wrote(
    embedded: httpx.AsyncClient,
) -> None:
    imported = await import_file(embedded, "product", "p.csv", render("product", "csv", PRODUCTS))
    assert imported["status"] == "completed", imported
    for params in ({"format": "xlsx"}, {"format": "jsonl", "gzip": True}):
        task, content = await export(embedded, "product", **params)
        file = await file_of(embedded, task["outputFileId"])
        assert (file["status"], file["purpose"]) == ("ready", "output")
        assert (file["size"], file["sha256"]) == (len(content), hashlib.sha256(content).hexdigest())


async def test_an_error_report_records_the_sha256_of_the_file_it_wrote(
    embedded: httpx.AsyncClient,
) -> None:
    content = b"sku,name,price,currency\nA-1,Shoe,12.50,EUR\nA-2,Hat,-1,EUR\n"
    task = await import_file(embedded, "product", "p.csv", content)
    assert (task["status"], task["failedItems"]) == ("completed", 1), task
    report = await download(embedded, task["id"], "errorReport")
    files = (await embedded.get(FILES, headers=ALICE)).json()["items"]
    [file] = [f for f in files if f["purpose"] == "error_report"]
    assert (file["taskId"], file["status"]) == (task["id"], "ready")
    assert (file["size"], file["sha256"]) == (len(report), hashlib.sha256(report).hexdigest())
    [source] = [f for f in files if f["purpose"] == "input"]
    assert source["sha256"] == hashlib.sha256(content).hexdigest()
