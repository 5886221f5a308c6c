"""Import and export through the API and the worker, on both databases.

The round trip, gzip and the error report also run on S3 (a real S3-compatible server): the
input goes by PUT to the signed uploadUrl and is confirmed, and downloads follow signed URLs,
as a client does. The rest runs on the local store only.
"""

from __future__ import annotations

import gzip
import io
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy import text

from service.bootstrap import Resources
from service.db.engine import session_scope
from service.sinks import local as local_sink
from tests.fixtures.app import wait_until
from tests.integration.bulk.support import (
    download,
    export,
    finished,
    import_file,
    render,
    start_import,
)

#: Runs a test (or each test of a class) on the local store and on S3.
BOTH_STORES = pytest.mark.parametrize("storage", ["local", "s3"], indirect=True)

#: Valid records per entity, in key order (exports come out in key order).
RECORDS: dict[str, list[dict[str, Any]]] = {
    "product": [
        {
            "sku": "A-1",
            "name": "Shoe",
            "description": "Red, size 42",
            "price": "12.50",
            "currency": "EUR",
            "stock": 3,
            "category": "shoes",
            "attributes": {"colour": "red"},
        },
        {
            "sku": "B-2",
            "name": '=HYPERLINK("x")',
            "description": None,
            "price": "0.99",
            "currency": "USD",
            "stock": 0,
            "category": None,
            "attributes": {},
        },
    ],
    "customer": [
        {
            "email": "ann@example.com",
            "first_name": "Ann",
            "last_name": "Lee",
            "phone": "+4915112345678",
            "accepts_marketing": True,
            "addresses": [
                {
                    "kind": "shipping",
                    "line1": "Main St 1",
                    "line2": None,
                    "city": "Berlin",
                    "region": None,
                    "postal_code": "10115",
                    "country": "DE",
                }
            ],
        },
        {
            "email": "bob@example.com",
            "first_name": "Bob",
            "last_name": None,
            "phone": None,
            "accepts_marketing": False,
            "addresses": [],
        },
    ],
    "order": [
        {
            "order_number": "O-1001",
            "customer_email": "ann@example.com",
            "status": "paid",
            "currency": "EUR",
            "lines": [{"sku": "A-1", "quantity": 2, "unit_price": "12.50"}],
            "subtotal": "25.00",
            "tax": "4.75",
            "shipping": "5.00",
            "total": "34.75",
            "ordered_at": "2026-11-01T10:00:00Z",
        },
    ],
    "inventory": [
        {"sku": "A-1", "warehouse": "BER", "quantity": 10, "adjustment": -2, "reason": "damaged"},
        {"sku": "A-1", "warehouse": "HAM", "quantity": 4, "adjustment": None, "reason": None},
    ],
}


def xlsx_rows(content: bytes) -> list[tuple[Any, ...]]:
    sheet = load_workbook(io.BytesIO(content), read_only=True).worksheets[0]
    return [tuple(row) for row in sheet.iter_rows(values_only=True)]


@BOTH_STORES
class TestRoundTrip:
    @pytest.mark.parametrize("entity", sorted(RECORDS))
    @pytest.mark.parametrize("fmt", ["csv", "jsonl", "xlsx"])
    async def test_export_gives_back_what_was_imported(
        self, embedded: httpx.AsyncClient, entity: str, fmt: str
    ) -> None:
        original = render(entity, fmt, RECORDS[entity])
        task = await import_file(embedded, entity, f"{entity}s.{fmt}", original)
        assert task["status"] == "completed", task
        assert task["succeededItems"] == len(RECORDS[entity])
        assert task["failedItems"] == 0
        _, exported = await export(embedded, entity, format=fmt)
        if fmt == "xlsx":
            assert xlsx_rows(exported) == xlsx_rows(original)
        else:
            assert exported == original

    async def test_gzip_in_and_out(self, embedded: httpx.AsyncClient, storage: str) -> None:
        original = render("product", "csv", RECORDS["product"], compress=True)
        started = await start_import(embedded, "product", "products.csv.gz", original)
        # the signed URL shows the store in use: relative (the API's own) or the S3 server's
        assert started["uploadUrl"].startswith("/") is (storage == "local")
        task = await finished(embedded, started["id"])
        assert task["succeededItems"] == 2
        _, exported = await export(embedded, "product", format="csv", gzip=True)
        assert gzip.decompress(exported) == gzip.decompress(original)


class TestValidationAndReport:
    @BOTH_STORES
    async def test_bad_rows_go_to_the_report_and_good_rows_go_in(
        self, embedded: httpx.AsyncClient
    ) -> None:
        content = (
            b"sku,name,price,currency,stock\n"
            b"A-1,Shoe,12.50,EUR,3\n"
            b"A-2,Hat,-1,EUR,1\n"
            b"A-3,Sock,1.00,EURO,2\n"
            b"A-4,,1.00,EUR,2\n"
        )
        task = await import_file(embedded, "product", "p.csv", content)
        assert task["status"] == "completed"
        assert (task["processedItems"], task["succeededItems"], task["failedItems"]) == (4, 1, 3)
        report = (await download(embedded, task["id"], "errorReport")).decode()
        lines = report.splitlines()
        assert lines[0] == "row,column,value,message"
        assert [line.split(",")[:2] for line in lines[1:]] == [
            ["2", "price"],
            ["3", "currency"],
            ["4", "name"],
        ]

    async def test_a_file_missing_a_required_column_fails_clearly(
        self, embedded: httpx.AsyncClient
    ) -> None:
        task = await import_file(embedded, "product", "p.csv", b"sku,name\nA-1,Shoe\n")
        assert task["status"] == "failed"
        assert "price" in task["errorMessage"]


class TestOptions:
    async def test_duplicates_are_errors_skipped_or_upserted(
        self, embedded: httpx.AsyncClient
    ) -> None:
        first = render("product", "csv", RECORDS["product"][:1])
        await import_file(embedded, "product", "p.csv", first)
        changed = dict(RECORDS["product"][0], name="Boot")
        again = render("product", "csv", [changed, changed])

        plain = await import_file(embedded, "product", "p.csv", again)
        assert (plain["succeededItems"], plain["failedItems"]) == (0, 2)
        skip = await import_file(embedded, "product", "p.csv", again, skipDuplicates=True)
        assert (skip["succeededItems"], skip["failedItems"], skip["result"]["skipped"]) == (0, 0, 2)
        upsert = await import_file(embedded, "product", "p.csv", again, mode="upsert")
        assert upsert["failedItems"] == 0
        assert upsert["result"]["updated"] == 2
        _, exported = await export(embedded, "product", format="jsonl")
        assert b'"name":"Boot"' in exported

    async def test_a_dry_run_counts_but_writes_nothing(self, embedded: httpx.AsyncClient) -> None:
        content = render("product", "csv", RECORDS["product"])
        task = await import_file(embedded, "product", "p.csv", content, validateOnly=True)
        assert task["status"] == "completed"
        assert task["result"]["dryRun"] is True
        assert task["result"]["created"] == 2
        _, exported = await export(embedded, "product", format="csv")
        assert exported.decode().splitlines()[1:] == []

    async def test_a_dry_run_finds_a_repeat_in_a_later_batch_as_a_real_run_would(
        self, embedded: httpx.AsyncClient
    ) -> None:
        first, second = RECORDS["product"][:2]
        content = render("product", "csv", [first, second, dict(first, name="Again")])
        params: dict[str, Any] = {"validateOnly": True, "batchSize": 1}  # a batch per row

        task = await import_file(embedded, "product", "p.csv", content, **params)
        assert (task["succeededItems"], task["failedItems"]) == (2, 1)
        report = (await download(embedded, task["id"], "errorReport")).decode().splitlines()
        assert report[1] == (
            f"3,key,{first['sku']},duplicate key '{first['sku']}': "
            "already in an earlier row of the file"
        )
        skip = await import_file(
            embedded, "product", "p.csv", content, skipDuplicates=True, **params
        )
        assert (skip["succeededItems"], skip["result"]["skipped"], skip["failedItems"]) == (
            2,
            1,
            0,
        )
        _, exported = await export(embedded, "product", format="csv")
        assert exported.decode().splitlines()[1:] == []  # a dry run writes nothing


class TestFormulaInjection:
    async def test_csv_cells_that_start_a_formula_are_neutralised(
        self, embedded: httpx.AsyncClient
    ) -> None:
        await import_file(
            embedded, "product", "p.jsonl", render("product", "jsonl", RECORDS["product"])
        )
        _, exported = await export(embedded, "product", format="csv")
        assert "'=HYPERLINK" in exported.decode()


@pytest.mark.postgres_only
@pytest.mark.parametrize("dialect", ["postgresql"])
class TestPlannerStatistics:
    async def test_a_large_import_leaves_the_store_analyzed_for_the_export_after_it(
        self, embedded: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(local_sink, "ANALYZE_AFTER_ROWS", 3)  # "large": three rows here
        small = render("product", "csv", RECORDS["product"][:2])
        await import_file(embedded, "product", "p.csv", small)
        assert await last_analyze(embedded) is None  # below the threshold

        rows = [dict(RECORDS["product"][0], sku=f"S-{n}") for n in range(3)]
        task = await import_file(embedded, "product", "q.csv", render("product", "csv", rows))
        assert task["status"] == "completed"
        # the statistics views are updated a moment after the ANALYZE's transaction
        assert await wait_until(lambda: last_analyze(embedded), timeout=10) is not None


async def last_analyze(client: httpx.AsyncClient) -> Any:
    """When the store's table was last analyzed by hand (not by autovacuum), or None."""
    resources: Resources = client.app.state.resources  # type: ignore[attr-defined]
    async with session_scope(resources.sessionmaker) as session:
        stmt = text("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'store_records'")
        return (await session.execute(stmt)).scalar_one()
