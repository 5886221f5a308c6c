"""check_rows: reader rows through a schema, bad rows beside good ones."""

from __future__ import annotations

import io
from typing import Any

from service.bulk import pipeline
from service.bulk.readers import open_reader
from service.bulk.rows import RowError
from service.bulk.schemas import SCHEMAS


def test_bad_rows_do_not_stop_good_ones() -> None:
    upload = b"sku,name,price,currency\nA,Apple,1.00,EUR\nB,,-1,EUR\nC,Cherry\n\nD,Date,2,usd\n"
    with open_reader(io.BytesIO(upload)) as reader:
        checked = list(pipeline.check_rows(reader, SCHEMAS["product"]))
    assert [(row.row, row.record is not None) for row in checked] == [
        (1, True),
        (2, False),
        (3, False),
        (5, True),
    ]
    assert checked[1].errors == (
        RowError(2, "name", None, "name is required"),
        RowError(2, "price", "-1", "price must not be negative"),
    )
    assert checked[2].errors == (
        RowError(3, None, None, "row has 2 values but the header has 4 columns"),
    )
    record = checked[3].record
    assert record is not None
    assert record.currency == "USD"


def test_a_bad_json_line_becomes_a_row_error() -> None:
    upload = b'{"sku": "A", "name": "x", "price": 1, "currency": "EUR"}\n{oops\n'
    with open_reader(io.BytesIO(upload)) as reader:
        checked = list(pipeline.check_rows(reader, SCHEMAS["product"]))
    assert checked[0].errors == ()
    assert checked[1].record is None
    assert checked[1].errors[0].message.startswith("line is not valid JSON")


def test_checked_rows_unpack_like_tuples() -> None:
    with open_reader(io.BytesIO(b"sku,warehouse,quantity\nA,W,1\n")) as reader:
        ((number, record, errors),) = pipeline.check_rows(reader, SCHEMAS["inventory"])
    assert (number, errors) == (1, ())
    assert record is not None
    assert record.quantity == 1


class TestCheckBatches:
    UPLOAD = b"sku,warehouse,quantity\nA,W,1\nB,W,-1\n\nC,W,3\nD,W\nE,W,5\n"

    def batches(self, size: int, start_after: int = 0) -> list[pipeline.CheckedBatch[Any]]:
        with open_reader(io.BytesIO(self.UPLOAD), start_after=start_after) as reader:
            return list(pipeline.check_batches(reader, SCHEMAS["inventory"], size=size))

    def test_rows_are_grouped_with_their_checkpoint(self) -> None:
        first, second, third = self.batches(size=2)
        assert [record.sku for record in first.records] == ["A"]
        assert first.record_rows == [1]
        assert first.errors == [RowError(2, "quantity", "-1", "quantity must not be negative")]
        assert (first.rows, first.last_row) == (2, 2)
        assert (second.record_rows, second.rows, second.last_row) == ([4], 2, 5)
        assert second.errors[0].row == 5
        assert (third.record_rows, third.rows, third.last_row) == ([6], 1, 6)

    def test_resuming_after_a_checkpoint_gives_the_remaining_batches(self) -> None:
        checkpoint = self.batches(size=2)[0].last_row
        resumed = self.batches(size=2, start_after=checkpoint)
        assert [batch.record_rows for batch in resumed] == [[4], [6]]

    def test_an_empty_file_gives_no_batch(self) -> None:
        with open_reader(io.BytesIO(b"sku,warehouse,quantity\n")) as reader:
            assert list(pipeline.check_batches(reader, SCHEMAS["inventory"])) == []
