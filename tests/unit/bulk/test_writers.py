"""open_writer: CSV, JSON Lines and XLSX output, gzip, determinism, formula injection."""

from __future__ import annotations

import gzip
import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import openpyxl
import pytest

from service.bulk import writers
from service.bulk.columns import Column, Kind
from service.bulk.readers import open_reader
from service.bulk.sniffing import Format

COLUMNS = (
    Column("sku"),
    Column("price", Kind.DECIMAL),
    Column("adjustment", Kind.INTEGER),
    Column("active", Kind.BOOLEAN),
    Column("at", Kind.DATETIME),
    Column("attributes", Kind.JSON),
)
ROW = {
    "sku": "A-1",
    "price": Decimal("12.5"),
    "adjustment": -5,
    "active": True,
    "at": datetime(2024, 5, 1, 10, tzinfo=UTC),
    "attributes": {"size": 42, "price": Decimal("1.20")},
}


def write(fmt: Format, rows: list[dict[str, Any]], **options: Any) -> bytes:
    out = io.BytesIO()
    with writers.open_writer(out, fmt, COLUMNS, **options) as writer:
        assert writer.write_rows(rows) == len(rows)
    return out.getvalue()


class TestCsv:
    def test_header_then_one_crlf_line_per_row(self) -> None:
        text = write("csv", [ROW, {"sku": "B"}]).decode()
        assert text == (
            "sku,price,adjustment,active,at,attributes\r\n"
            'A-1,12.50,-5,true,2024-05-01T10:00:00Z,"{""size"":42,""price"":""1.20""}"\r\n'
            "B,,,,,\r\n"
        )

    @pytest.mark.parametrize("text", ["=1+1", "+1", "-1", "@A1", "\tx", "\rx", "'=x"])
    def test_text_cells_that_a_spreadsheet_would_run_are_neutralised(self, text: str) -> None:
        line = write("csv", [{"sku": text}]).decode().split("\r\n", 1)[1]
        assert line.startswith(("'", "\"'"))

    def test_numbers_in_numeric_columns_keep_their_sign(self) -> None:
        line = write("csv", [{"price": Decimal("-1"), "adjustment": -5}]).decode().split("\r\n")[1]
        assert line == ",-1.00,-5,,,"

    def test_a_bom_can_be_asked_for(self) -> None:
        assert write("csv", [], bom=True).startswith(b"\xef\xbb\xbfsku,")

    def test_keys_that_are_not_columns_are_ignored(self) -> None:
        assert write("csv", [{"sku": "A", "other": "x"}]).endswith(b"A,,,,,\r\n")


class TestJsonLines:
    def test_one_compact_object_per_line_in_column_order(self) -> None:
        lines = write("jsonl", [ROW, {"sku": "B"}]).decode().splitlines()
        assert lines[0] == (
            '{"sku":"A-1","price":"12.50","adjustment":-5,"active":true,'
            '"at":"2024-05-01T10:00:00Z","attributes":{"size":42,"price":"1.20"}}'
        )
        assert json.loads(lines[1]) == dict.fromkeys(["sku", *[c.name for c in COLUMNS[1:]]]) | {
            "sku": "B"
        }

    def test_text_is_written_as_is(self) -> None:
        assert b'"sku":"=cmd"' in write("jsonl", [{"sku": "=cmd"}])

    def test_many_rows_are_all_written(self) -> None:
        rows = [{"sku": f"S{i}"} for i in range(2000)]
        data = write("jsonl", rows)
        assert data.count(b"\n") == 2000
        assert data.endswith(b'"attributes":null}\n')


class TestXlsx:
    def read_back(self, data: bytes) -> list[list[Any]]:
        book = openpyxl.load_workbook(io.BytesIO(data))
        return [[cell.value for cell in row] for row in book.worksheets[0].iter_rows()]

    def test_typed_cells_and_iso_datetimes(self) -> None:
        rows = self.read_back(write("xlsx", [ROW]))
        assert rows[0] == [c.name for c in COLUMNS]
        assert rows[1] == [
            "A-1",
            12.5,
            -5,
            True,
            "2024-05-01T10:00:00Z",
            '{"size":42,"price":"1.20"}',
        ]

    def test_formula_text_stays_text(self) -> None:
        data = write("xlsx", [{"sku": '=HYPERLINK("http://x")'}, {"sku": "#N/A"}])
        sheet = openpyxl.load_workbook(io.BytesIO(data)).worksheets[0]
        assert sheet["A2"].data_type == "s"
        assert sheet["A2"].value == '=HYPERLINK("http://x")'
        assert sheet["A3"].data_type == "s"

    def test_characters_xml_cannot_hold_are_replaced(self) -> None:
        rows = self.read_back(write("xlsx", [{"sku": "a\x00b\x1fc"}]))
        assert rows[1][0] == "a\ufffdb\ufffdc"


class TestGzipAndClosing:
    @pytest.mark.parametrize("fmt", ["csv", "jsonl", "xlsx"])
    def test_gzip_output_decompresses_and_reads_back(self, fmt: Format) -> None:
        data = write(fmt, [ROW], gzip=True)
        assert data[:2] == b"\x1f\x8b"
        assert gzip.decompress(data)
        with open_reader(io.BytesIO(data)) as reader:
            assert reader.format == fmt
            assert [number for number, _ in reader] == [1]

    @pytest.mark.parametrize("fmt", ["csv", "jsonl"])
    @pytest.mark.parametrize("compress", [False, True])
    def test_the_same_rows_give_the_same_bytes(self, fmt: Format, compress: bool) -> None:
        assert write(fmt, [ROW] * 3, gzip=compress) == write(fmt, [ROW] * 3, gzip=compress)

    @pytest.mark.parametrize("fmt", ["csv", "jsonl", "xlsx"])
    def test_close_finishes_the_file_leaves_the_stream_open_and_may_repeat(
        self, fmt: Format
    ) -> None:
        out = io.BytesIO()
        writer = writers.open_writer(out, fmt, COLUMNS, gzip=True)
        writer.write_row(ROW)
        writer.close()
        writer.close()
        assert not out.closed
        assert writer.rows_written == 1

    def test_file_name(self) -> None:
        assert writers.file_name("products", "csv", gzip=True) == "products.csv.gz"
        assert writers.file_name("products", "xlsx") == "products.xlsx"


class TestJsonlQuickPath:
    """Rows already in the written form are encoded as they are: the same bytes as row by row."""

    ROWS: tuple[dict[str, Any], ...] = (
        {
            "sku": "A-1",
            "price": "12.50",
            "adjustment": -5,
            "active": True,
            "at": "2024-05-01T10:00:00Z",
            "attributes": {"a": 1},
        },  # the quick path: columns in order, decimal and datetime as text
        {
            "sku": "A-2",
            "price": None,
            "adjustment": None,
            "active": None,
            "at": None,
            "attributes": None,
        },
        dict(ROW),  # a Decimal and a datetime: rendered
        {"price": "1.00", "sku": "A-3"},  # other order, missing columns
        {**ROW, "extra": 1},  # an unknown key: left out
        {
            "sku": "A-4",
            "price": 7,
            "adjustment": 0,
            "active": False,
            "at": "x",
            "attributes": [],
        },
    )

    def test_write_rows_writes_what_write_row_writes(self) -> None:
        rows = [dict(row) for row in self.ROWS] * 300  # more than one flush
        one_by_one = io.BytesIO()
        with writers.open_writer(one_by_one, "jsonl", COLUMNS) as writer:
            for row in rows:
                writer.write_row(row)
        assert write("jsonl", rows) == one_by_one.getvalue()
        lines = write("jsonl", rows).decode().splitlines()
        assert len(lines) == len(rows)
        assert json.loads(lines[5])["price"] == "7.00"
        assert list(json.loads(lines[3])) == [column.name for column in COLUMNS]
