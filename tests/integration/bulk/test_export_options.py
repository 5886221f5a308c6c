"""What an export offers besides its format: filters, keyPrefix, columns, paging, and progress
with a total and time left. Both databases, local store; one class reads a remote source.

Each test imports known records, exports, and compares the downloaded rows with the records
expected, in key order.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from service.bootstrap import Resources
from service.clock import utcnow
from service.db.engine import session_scope
from service.db.repositories.store import StoreRepository
from service.db.tables import outbox_table
from service.domain.events import EventType
from tests.fixtures.serving import serving
from tests.integration.bulk.support import (
    ALICE,
    TASKS,
    download,
    export,
    finished,
    import_file,
    render,
)

Row = dict[str, Any]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"progress_interval_seconds": 0}  # every progress report is written and announced


def product(sku: str, **fields: Any) -> Row:
    """A product row with every column, as a JSON Lines export writes it."""
    return {
        "sku": sku,
        "name": "Item",
        "description": None,
        "price": "1.00",
        "currency": "EUR",
        "stock": 0,
        "category": None,
        "attributes": {},
        **fields,
    }


def numbered(count: int) -> list[Row]:
    """`count` products P-001… with prices, currencies and stock varying by number."""
    return [
        product(
            f"P-{n:03d}",
            name=f"Item {n}",
            price=("1.00", "12.50", "99.99", "12.05")[n % 4],
            currency=("EUR", "USD")[n % 2],
            stock=n % 5,
        )
        for n in range(1, count + 1)
    ]


SHOP = [
    product("A-1", name="Red shoe", price="12.50", stock=3, category="shoes"),
    product("A-2", name="Shoe", price="12.05", stock=0, category="shoes"),
    product("B-1", name="Hat", price="1.00", currency="USD", stock=30, category="hats"),
    product("B-2", name="Shoe", price="99.99", currency="USD", stock=3),
    product("C-1", name="Cap", price="12.50", currency="USD", stock=0, category="hats"),
]
INVENTORY = [
    {"sku": "A-1", "warehouse": "BER", "quantity": 10, "adjustment": -2, "reason": "damaged"},
    {"sku": "A-1", "warehouse": "HAM", "quantity": 0, "adjustment": None, "reason": None},
    {"sku": "A-10", "warehouse": "BER", "quantity": 10, "adjustment": 5, "reason": "found"},
    {"sku": "B-2", "warehouse": "BER", "quantity": 3, "adjustment": None, "reason": None},
]
CUSTOMERS: list[Row] = [
    {
        "email": f"{name.lower()}@example.com",
        "first_name": name,
        "last_name": None,
        "phone": None,
        "accepts_marketing": marketing,
        "addresses": [],
    }
    for name, marketing in [("Ann", True), ("Bob", False), ("Cy", True)]
]
KEYS: dict[str, Callable[[Row], str]] = {
    "product": lambda row: str(row["sku"]),
    "customer": lambda row: str(row["email"]),
    "inventory": lambda row: f"{row['sku']}|{row['warehouse']}",
}


async def load(client: httpx.AsyncClient, entity: str, rows: list[Row]) -> None:
    task = await import_file(client, entity, f"{entity}.jsonl", render(entity, "jsonl", rows))
    assert (task["status"], task["succeededItems"]) == ("completed", len(rows)), task


async def exported_rows(
    client: httpx.AsyncClient, entity: str, **params: Any
) -> tuple[dict[str, Any], list[Row]]:
    """The finished task and the rows of its JSON Lines file."""
    task, content = await export(client, entity, format="jsonl", **params)
    return task, jsonl(content)


def jsonl(content: bytes) -> list[Row]:
    return [json.loads(line) for line in content.decode().splitlines()]


def xlsx_rows(content: bytes) -> list[tuple[Any, ...]]:
    sheet = load_workbook(io.BytesIO(content), read_only=True).worksheets[0]
    return [tuple(row) for row in sheet.iter_rows(values_only=True)]


def keyed(entity: str, rows: list[Row], *keys: str) -> list[Row]:
    """The rows with those keys, in key order (the order of every export)."""
    by_key = {KEYS[entity](row): row for row in rows}
    return [by_key[key] for key in sorted(keys)]


async def store_raw(client: httpx.AsyncClient, entity: str, key: str, data: Row) -> None:
    """A record written straight to the store, past import validation: values need not be of
    the schema's types, as records stored before a column changed type would not be."""
    resources: Resources = client.app.state.resources  # type: ignore[attr-defined]
    async with session_scope(resources.sessionmaker) as session:
        await StoreRepository(session).insert_new(entity, uuid.uuid4(), [(key, data)], utcnow())


class TestFilters:
    PRODUCT_CASES: tuple[tuple[dict[str, Any], tuple[str, ...]], ...] = (
        ({"category": "shoes"}, ("A-1", "A-2")),
        ({"category": "Shoes"}, ()),  # text matches exactly, case included
        ({"name": "Shoe"}, ("A-2", "B-2")),  # the whole value: not "Red shoe"
        ({"stock": 3}, ("A-1", "B-2")),
        ({"stock": 0}, ("A-2", "C-1")),
        ({"stock": 30}, ("B-1",)),
        ({"price": "12.50"}, ("A-1", "C-1")),
        ({"price": 12.5}, ("A-1", "C-1")),  # decimals match by amount however written
        ({"price": "12.5"}, ("A-1", "C-1")),
        ({"price": 1}, ("B-1",)),
        ({"price": "12.05"}, ("A-2",)),
        ({"currency": "USD", "category": "hats"}, ("B-1", "C-1")),  # every filter holds
        ({"currency": "USD", "stock": 3}, ("B-2",)),
    )

    async def test_text_integer_and_decimal_filters_export_exactly_the_matching_records(
        self, embedded: httpx.AsyncClient, subtests: pytest.Subtests
    ) -> None:
        await load(embedded, "product", SHOP)
        # stock and price of other types must neither match nor fail the query (PostgreSQL
        # refuses to cast "n/a" to a number)
        odd = product("Z-9", name="Odd", price=12.5, stock="n/a", category="odd")
        await store_raw(embedded, "product", "Z-9", odd)
        for filters, keys in self.PRODUCT_CASES:
            with subtests.test(filters=filters):
                task, rows = await exported_rows(embedded, "product", filters=filters)
                assert rows == keyed("product", SHOP, *keys)
                assert task["result"]["rowsWritten"] == task["totalItems"] == len(keys)

    async def test_boolean_filters(
        self, embedded: httpx.AsyncClient, subtests: pytest.Subtests
    ) -> None:
        await load(embedded, "customer", CUSTOMERS)
        odd = dict(CUSTOMERS[0], email="odd@example.com", accepts_marketing="yes")
        await store_raw(embedded, "customer", "odd@example.com", odd)
        for filters, keys in [
            ({"accepts_marketing": True}, ("ann@example.com", "cy@example.com")),
            ({"accepts_marketing": False}, ("bob@example.com",)),
            ({"accepts_marketing": True, "first_name": "Cy"}, ("cy@example.com",)),
        ]:
            with subtests.test(filters=filters):
                _, rows = await exported_rows(embedded, "customer", filters=filters)
                assert rows == keyed("customer", CUSTOMERS, *keys)

    async def test_integer_filters_on_signed_and_empty_values(
        self, embedded: httpx.AsyncClient, subtests: pytest.Subtests
    ) -> None:
        await load(embedded, "inventory", INVENTORY)
        for filters, keys in [
            ({"adjustment": -2}, ("A-1|BER",)),
            ({"adjustment": 0}, ()),  # an empty adjustment is not 0
            ({"quantity": 10}, ("A-1|BER", "A-10|BER")),
            ({"quantity": 0, "warehouse": "HAM"}, ("A-1|HAM",)),
        ]:
            with subtests.test(filters=filters):
                _, rows = await exported_rows(embedded, "inventory", filters=filters)
                assert rows == keyed("inventory", INVENTORY, *keys)

    BAD: tuple[tuple[str, dict[str, Any], str, str], ...] = (
        ("product", {"filters": {"colour": "red"}}, "filters.colour", "unknown product columns"),
        ("product", {"filters": {"stock": "3"}}, "filters.stock", "whole-number column"),
        ("product", {"filters": {"stock": 2.5}}, "filters.stock", "whole-number column"),
        ("product", {"filters": {"stock": True}}, "filters.stock", "whole-number column"),
        ("product", {"filters": {"category": 5}}, "filters.category", "text column"),
        ("product", {"filters": {"price": "cheap"}}, "filters.price", "at most 2 decimal places"),
        ("product", {"filters": {"price": "12.505"}}, "filters.price", "at most 2 decimal"),
        ("product", {"filters": {"price": False}}, "filters.price", "decimal column"),
        ("product", {"filters": {"attributes": "x"}}, "filters.attributes", "cannot be filtered"),
        ("product", {"filters": {"category": None}}, "filters.category", "text, a number"),
        ("product", {"filters": {"category": ["a"]}}, "filters.category", "text, a number"),
        (
            "customer",
            {"filters": {"accepts_marketing": "yes"}},
            "filters.accepts_marketing",
            "true",
        ),
        ("order", {"filters": {"ordered_at": "2026-11-01"}}, "filters.ordered_at", "cannot be"),
        ("product", {"columns": ["sku", "colour"]}, "columns", "unknown product columns: colour"),
        (
            "product",
            {"keyPrefix": "A", "sink": "service", "targetService": "owner", "method": "export"},
            "params",
            "keyPrefix selects records of the local store",
        ),
    )

    async def test_a_filter_or_column_the_entity_cannot_take_is_a_422_naming_it(
        self, api: httpx.AsyncClient, subtests: pytest.Subtests
    ) -> None:
        for entity, params, name, reason in self.BAD:
            with subtests.test(params=params):
                body = {"taskType": "export", "entityType": entity, "params": params}
                response = await api.post(TASKS, json=body, headers=ALICE)
                assert response.status_code == 422, response.text
                (error,) = response.json()["errors"]
                assert error["field"] == (name if name == "params" else f"params.{name}")
                assert reason in error["reason"]
        listed = (await api.get(TASKS, headers=ALICE)).json()
        assert listed["items"] == []  # refused before anything was written


class TestSelection:
    async def test_key_prefix_is_a_literal_prefix(
        self, embedded: httpx.AsyncClient, subtests: pytest.Subtests
    ) -> None:
        shop = [product(sku) for sku in ("P-10", "P-100", "P_10", "PX10", "Q-10")]
        await load(embedded, "product", shop)
        await load(embedded, "inventory", INVENTORY)
        cases: list[tuple[str, list[Row], dict[str, Any], tuple[str, ...]]] = [
            ("product", shop, {"keyPrefix": "P-10"}, ("P-10", "P-100")),
            ("product", shop, {"keyPrefix": "P_1"}, ("P_10",)),  # "_" is no wildcard
            ("product", shop, {"keyPrefix": "p-10"}, ()),
            ("inventory", INVENTORY, {"keyPrefix": "A-1|"}, ("A-1|BER", "A-1|HAM")),
            (
                "inventory",
                INVENTORY,
                {"keyPrefix": "A-1", "filters": {"quantity": 10}},
                ("A-1|BER", "A-10|BER"),
            ),
        ]
        for entity, rows, params, keys in cases:
            with subtests.test(params=params):
                _, exported = await exported_rows(embedded, entity, **params)
                assert exported == keyed(entity, rows, *keys)

    async def test_columns_come_in_the_order_asked(self, embedded: httpx.AsyncClient) -> None:
        await load(embedded, "product", SHOP)
        task, content = await export(embedded, "product", format="csv", columns=["price", "sku"])
        assert task["result"]["columns"] == ["price", "sku"]
        expected = [["price", "sku"]] + [[row["price"], row["sku"]] for row in SHOP]
        assert list(csv.reader(io.StringIO(content.decode()))) == expected

        _, rows = await exported_rows(embedded, "product", columns=["stock", "name", "sku"])
        assert rows == [{"stock": r["stock"], "name": r["name"], "sku": r["sku"]} for r in SHOP]
        assert [list(row) for row in rows] == [["stock", "name", "sku"]] * len(SHOP)


class TestPaging:
    async def test_many_small_pages_give_every_record_once_in_key_order(
        self, embedded: httpx.AsyncClient
    ) -> None:
        records = numbered(50)
        await load(embedded, "product", list(reversed(records)))
        task, rows = await exported_rows(embedded, "product", batchSize=7)
        assert rows == records
        assert task["result"]["rowsWritten"] == 50
        counts = ("processedItems", "succeededItems", "failedItems", "totalItems")
        assert tuple(task[name] for name in counts) == (50, 50, 0, 50)

        task, rows = await exported_rows(
            embedded, "product", batchSize=7, filters={"currency": "USD"}
        )
        assert rows == [row for row in records if row["currency"] == "USD"]
        assert (task["result"]["rowsWritten"], task["totalItems"]) == (25, 25)

    @pytest.mark.parametrize("fmt", ["csv", "jsonl", "xlsx"])
    async def test_nothing_matching_gives_a_file_with_only_the_header(
        self, embedded: httpx.AsyncClient, fmt: str
    ) -> None:
        await load(embedded, "product", SHOP)
        task, content = await export(
            embedded, "product", format=fmt, columns=["sku", "price"], filters={"stock": 99}
        )
        assert (task["status"], task["progress"]) == ("completed", 100)
        assert (task["result"]["rowsWritten"], task["totalItems"]) == (0, 0)
        if fmt == "csv":
            assert content.decode().splitlines() == ["sku,price"]
        elif fmt == "jsonl":
            assert content == b""
        else:
            assert xlsx_rows(content) == [("sku", "price")]


async def progress_notices(client: httpx.AsyncClient, task_id: str) -> list[dict[str, Any]]:
    """The task snapshots of its operations.task.progress notices, oldest first."""
    resources: Resources = client.app.state.resources  # type: ignore[attr-defined]
    async with resources.sessionmaker() as session:
        payloads = await session.scalars(
            select(outbox_table.c.payload)
            .where(
                outbox_table.c.task_id == uuid.UUID(task_id),
                outbox_table.c.topic == EventType.PROGRESS.value,
            )
            .order_by(outbox_table.c.id)
        )
        return list(payloads)


async def start_export(client: httpx.AsyncClient, entity: str, **params: Any) -> dict[str, Any]:
    """Run a JSON Lines export to its end; the completed task."""
    body = {"taskType": "export", "entityType": entity, "params": {"format": "jsonl", **params}}
    created = await client.post(TASKS, json=body, headers=ALICE)
    assert created.status_code == 201, created.text
    task = await finished(client, created.json()["id"])
    assert task["status"] == "completed", task
    return task


class TestProgress:
    async def test_progress_rises_page_by_page_towards_the_total(
        self, embedded: httpx.AsyncClient
    ) -> None:
        await load(embedded, "product", numbered(50))
        await store_raw(embedded, "product", "Q-1", product("Q-1"))  # outside the prefix
        task = await start_export(embedded, "product", batchSize=7, keyPrefix="P-")

        notices = await progress_notices(embedded, task["id"])
        done = [n["processedItems"] for n in notices]
        assert done == [0, 7, 14, 21, 28, 35, 42, 49, 50]  # the count first, then each page
        assert {n["totalItems"] for n in notices} == {50}  # the matching records only
        progress = [n["progress"] for n in notices]
        assert progress == [min(99, d * 100 // 50) for d in done]  # 100 only once completed
        figures = [n["result"] for n in notices]
        assert figures[0]["etaSeconds"] is None  # no rate before the first page
        assert all(f["rowsPerSecond"] > 0 for f in figures[1:])
        seconds_left = [f["etaSeconds"] for f in figures[1:]]
        assert all(s is not None and s >= 0 for s in seconds_left)
        assert seconds_left[-1] == 0

        assert (task["progress"], task["processedItems"], task["totalItems"]) == (100, 50, 50)
        assert task["result"]["rowsPerSecond"] > 0


@dataclass
class Owner:
    """Another service that owns the records, behind a stand-in for its Dapr sidecar: it
    answers export pages by the contract of service/sinks/dapr.py (DaprServiceSource)."""

    records: list[Row]
    asked: list[Row] = field(default_factory=list)  #: the bodies of the page requests

    async def page(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.asked.append(body)
        after, limit = body["after"], body["limit"]
        matching = [r for r in self.records if all(r[k] == v for k, v in body["filters"].items())]
        page = [r for r in matching if after is None or r["sku"] > after][:limit]
        return JSONResponse({"records": page, "next": page[-1]["sku"] if page else None})


@pytest.fixture
async def owner() -> AsyncIterator[tuple[Owner, str]]:
    served = Owner(numbered(20))
    route = Route("/v1.0/invoke/owner/method/export", served.page, methods=["POST"])
    async with serving(Starlette(routes=[route])) as url:
        yield served, url


class TestRemoteSource:
    @pytest.fixture
    def settings_overrides(self, owner: tuple[Owner, str]) -> dict[str, Any]:
        return {"progress_interval_seconds": 0, "dapr_http_endpoint": owner[1]}

    SOURCE: ClassVar[dict[str, Any]] = {
        "sink": "service",
        "targetService": "owner",
        "method": "export",
    }

    async def test_a_remote_source_reports_its_rate_but_no_percentage(
        self, embedded: httpx.AsyncClient, owner: tuple[Owner, str]
    ) -> None:
        served, _ = owner
        task = await start_export(embedded, "product", batchSize=7, **self.SOURCE)
        rows = jsonl(await download(embedded, task["id"]))
        assert rows == served.records

        notices = await progress_notices(embedded, task["id"])
        assert [n["processedItems"] for n in notices] == [0, 7, 14, 20]
        assert {(n["progress"], n["totalItems"]) for n in notices} == {(0, None)}  # unknown
        assert all(n["result"]["etaSeconds"] is None for n in notices)
        assert all(n["result"]["rowsPerSecond"] > 0 for n in notices[1:])
        assert (task["progress"], task["totalItems"]) == (100, 20)

    async def test_filters_reach_the_owner_as_the_records_hold_them(
        self, embedded: httpx.AsyncClient, owner: tuple[Owner, str]
    ) -> None:
        served, _ = owner
        task = await start_export(
            embedded, "product", filters={"price": 12.5, "currency": "USD"}, **self.SOURCE
        )
        sent = {"price": "12.50", "currency": "USD"}  # the amount as the records write it
        assert served.asked
        assert all(body["filters"] == sent for body in served.asked)
        rows = jsonl(await download(embedded, task["id"]))
        expected = [r for r in served.records if (r["price"], r["currency"]) == ("12.50", "USD")]
        assert rows == expected
        assert expected  # the case is not vacuous
