"""Batches: reader rows through a schema, bad rows beside good ones, a checkpoint per batch."""

from __future__ import annotations

import io
import re
import tracemalloc
from decimal import Decimal

import pytest

from service.bulk.pipeline import MAX_ROW_PROBLEMS, Batches, CheckedBatch
from service.bulk.readers import open_reader
from service.bulk.rows import RowError
from service.bulk.schemas import SCHEMAS


def batches(upload: bytes, entity: str, size: int, start_after: int = 0) -> list[CheckedBatch]:
    with open_reader(io.BytesIO(upload), start_after=start_after) as reader:
        rows = Batches(reader, SCHEMAS[entity])
        return list(iter(lambda: rows.next(size), None))


def test_bad_rows_do_not_stop_good_ones() -> None:
    upload = b"sku,name,price,currency\nA,Apple,1.00,EUR\nB,,-1,EUR\nC,Cherry\n\nD,Date,2,usd\n"
    ((candidates, errors, last),) = batches(upload, "product", size=10)
    assert [(c.row_number, c.key) for c in candidates] == [(1, "A"), (5, "D")]
    assert candidates[1].fields["currency"] == "USD"
    assert errors == [
        RowError(2, "name", None, "name is required"),
        RowError(2, "price", "-1", "price must not be negative"),
        RowError(3, None, None, "row has 2 values but the header has 4 columns"),
    ]
    assert last == 5


def test_a_bad_json_line_becomes_a_row_error() -> None:
    upload = b'{"sku": "A", "name": "x", "price": 1, "currency": "EUR"}\n{oops\n'
    ((candidates, errors, _),) = batches(upload, "product", size=10)
    assert [c.key for c in candidates] == ["A"]
    assert errors[0].row == 2
    assert errors[0].message.startswith("line is not valid JSON")


def test_a_candidate_holds_the_key_and_the_validated_values() -> None:
    upload = b"sku,name,price,currency\n A-1 ,Apple,1.5,eur\n"
    ((candidates, _, _),) = batches(upload, "product", size=10)
    (apple,) = candidates
    assert (apple.row_number, apple.key) == (1, "A-1")
    assert apple.fields["price"] == Decimal("1.50")
    assert apple.data["price"] == "1.50"  # JSON-ready for a sink
    assert apple.data["currency"] == "EUR"


def test_an_inventory_key_names_sku_and_warehouse() -> None:
    ((candidates, _, _),) = batches(b"sku,warehouse,quantity\nA,W,1\n", "inventory", size=10)
    record = SCHEMAS["inventory"].validator(candidates[0].fields)
    assert candidates[0].key == SCHEMAS["inventory"].key_text(record)
    assert SCHEMAS["inventory"].key_of(record) == ("A", "W")


class TestBatches:
    UPLOAD = b"sku,warehouse,quantity\nA,W,1\nB,W,-1\n\nC,W,3\nD,W\nE,W,5\n"

    def test_rows_are_grouped_with_their_checkpoint(self) -> None:
        first, second, third = batches(self.UPLOAD, "inventory", size=2)
        assert [c.fields["sku"] for c in first.candidates] == ["A"]
        assert [c.row_number for c in first.candidates] == [1]
        assert first.errors == [RowError(2, "quantity", "-1", "quantity must not be negative")]
        assert first.last_row == 2
        assert ([c.row_number for c in second.candidates], second.last_row) == ([4], 5)
        assert second.errors[0].row == 5
        assert ([c.row_number for c in third.candidates], third.last_row) == ([6], 6)

    def test_resuming_after_a_checkpoint_gives_the_remaining_batches(self) -> None:
        checkpoint = batches(self.UPLOAD, "inventory", size=2)[0].last_row
        resumed = batches(self.UPLOAD, "inventory", size=2, start_after=checkpoint)
        assert [[c.row_number for c in batch.candidates] for batch in resumed] == [[4], [6]]

    def test_an_empty_file_gives_no_batch(self) -> None:
        assert batches(b"sku,warehouse,quantity\n", "inventory", size=2) == []

    def test_iterating_gives_every_row_once(self) -> None:
        upload = b"sku,warehouse,quantity\n" + b"".join(b"S%d,W,1\n" % i for i in range(2500))
        with open_reader(io.BytesIO(upload)) as reader:
            sizes = [len(batch.candidates) for batch in Batches(reader, SCHEMAS["inventory"])]
        assert sizes == [1000, 1000, 500]

    def test_a_batch_ends_at_the_rejected_row_that_uses_up_the_allowance(self) -> None:
        upload = b"sku,warehouse,quantity\n" + b"A,W,1\nB,W,-1\nC,W,2\nD,W,-1\nE,W,-1\nF,W,3\n"
        with open_reader(io.BytesIO(upload)) as reader:
            rows = Batches(reader, SCHEMAS["inventory"])
            first = rows.next(100, max_rejected=2)
            assert first is not None
            assert ([c.row_number for c in first.candidates], first.last_row) == ([1, 3], 4)
            assert [e.row for e in first.errors] == [2, 4]
            rest = rows.next(100, max_rejected=2)
        assert rest is not None
        assert ([e.row for e in rest.errors], rest.last_row) == ([5], 6)  # nothing was lost

    def test_a_batch_ends_once_its_rows_took_its_share_of_the_file(self) -> None:
        note = "n" * 5_000
        upload = b"sku,warehouse,quantity,reason\n" + b"".join(
            b"S%d,W,1,%s\n" % (i, note.encode()) for i in range(1000)
        )
        with open_reader(io.BytesIO(upload)) as reader:
            rows = Batches(reader, SCHEMAS["inventory"], max_bytes=1_000_000)
            ends = [batch.last_row for batch in iter(lambda: rows.next(1000), None)]
        sizes = [end - start for start, end in zip([0, *ends], ends, strict=False)]
        assert sum(sizes) == 1000
        assert max(sizes) < 300  # ~200 rows of 5 KB, give or take a 64 KiB chunk

    def test_a_rows_problems_are_capped(self) -> None:
        lines = ", ".join(
            f'{{"sku": "X", "quantity": -{n}, "unit_price": "bad"}}' for n in range(30)
        )
        row = {
            "order_number": "O-1",
            "customer_email": "ann@example.com",
            "currency": "EUR",
            "lines": f"[{lines}]",
            "total": "1.00",
            "ordered_at": "2026-01-01T00:00:00Z",
        }
        (batch,) = Batches([(1, row)], SCHEMAS["order"])
        assert len(batch.errors) == MAX_ROW_PROBLEMS
        summary = batch.errors[-1]
        assert (summary.row, summary.column) == (1, None)
        assert re.fullmatch(r"… and \d+ more problems in this row", summary.message)


def _nested(items: int) -> str:
    return "[" + ",".join(["[]"] * items) + "]"  # 3 bytes an item as text, 64 as objects


#: Files whose JSON values are small as text and large as Python objects.
NESTED = {
    "jsonl": b"".join(
        b'{"sku": "S-%d", "name": "x", "price": "1", "currency": "EUR", "attributes": {"a": %s}}\n'
        % (n, _nested(150_000).encode())
        for n in range(12)
    ),
    "csv": b"sku,name,price,currency,attributes\n"
    + b"".join(b'S-%d,x,1,EUR,"{""a"": %s}"\n' % (n, _nested(10_000).encode()) for n in range(300)),
}


@pytest.mark.parametrize("fmt", sorted(NESTED))
def test_a_batch_of_json_that_swells_when_parsed_stays_small(fmt: str) -> None:
    # 5-9 MB of files that parse to ~200 MB: a 2,000-row batch would hold all of it
    peak = 0
    rows = 0
    tracemalloc.start()
    try:
        with open_reader(io.BytesIO(NESTED[fmt]), fmt=fmt) as reader:  # type: ignore[arg-type]
            batches = Batches(reader, SCHEMAS["product"])
            while (batch := batches.next(2000)) is not None:
                rows += len(batch.candidates)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rows == NESTED[fmt].count(b"\n") - (fmt == "csv")
    assert peak < 48 * 1024 * 1024, f"a batch held {peak / 2**20:.0f} MB"
