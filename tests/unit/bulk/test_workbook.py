"""XLSX reading with bounded memory (service.bulk.workbook): hostile workbooks are row errors
or damaged files, never a worker holding what the attacker inflated."""

from __future__ import annotations

import io
import threading
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import Any

import openpyxl
import pytest

from service.bulk import streams
from service.bulk.errors import CorruptFile, LimitExceeded
from service.bulk.limits import ReadLimits
from service.bulk.pipeline import Batches
from service.bulk.readers import open_reader
from service.bulk.rows import RowError
from service.bulk.schemas import SCHEMAS
from service.domain.errors import PermanentFailure
from tests.unit.bulk import hostile
from tests.unit.bulk.samples import xlsx_bytes

MB = 1024 * 1024


def read(data: bytes, **options: Any) -> list[tuple[int, dict[str, Any] | RowError]]:
    with open_reader(io.BytesIO(data), filename="book.xlsx", **options) as reader:
        return list(reader)


def peak_bytes(work: Callable[[], Any]) -> int:
    """The most memory Python (expat and zlib included) held at once while `work` ran."""
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def sheet(*rows: bytes, dimension: str = "") -> Iterator[bytes]:
    yield hostile.SHEET_START.encode() + dimension.encode() + b"<sheetData>" + hostile.HEADER_ROW
    yield from rows
    yield hostile.SHEET_END


def inline(ref: str, text: str) -> bytes:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'.encode()


class TestHugeCells:
    def test_a_cell_over_excels_limit_is_a_row_error_and_reading_goes_on(self) -> None:
        data = hostile.workbook_bytes(
            sheet(
                b'<row r="2">' + inline("A2", "A-1") + inline("B2", "x" * 40_000) + b"</row>",
                b'<row r="3">' + inline("A3", "A-2") + inline("B3", "ok") + b"</row>",
            )
        )
        rows = read(data)
        assert rows == [
            (1, RowError(1, "name", "x" * 199 + "…", "name is longer than 32767 characters")),
            (2, {"sku": "A-2", "name": "ok"}),
        ]

    def test_a_200_mb_cell_is_never_held(self) -> None:
        # 200 MB of text in a ~200 KB workbook: openpyxl held all of it (+384 MB RSS)
        data = hostile.workbook_bytes(hostile.huge_cell_sheet(200_000_000))
        assert len(data) < 400_000
        result: list[Any] = []
        peak = peak_bytes(lambda: result.extend(read(data)))
        assert result[0][1].message == "name is longer than 32767 characters"
        assert peak < 8 * MB, f"reading held {peak / MB:.1f} MB"

    def test_a_shared_string_over_the_limit_is_a_row_error(self) -> None:
        table = hostile.string_table(0)
        long = b"<si><t>" + b"y" * 40_000 + b"</t></si><si><t>fine</t></si>"
        strings = [next(table), long, b"</sst>"]
        data = hostile.workbook_bytes(
            sheet(b'<row r="2"><c r="A2" t="s"><v>1</v></c><c r="B2" t="s"><v>0</v></c></row>'),
            strings=strings,
        )
        assert read(data) == [
            (1, RowError(1, "name", "y" * 199 + "…", "name is longer than 32767 characters"))
        ]


class TestSharedStrings:
    def test_the_table_is_held_in_about_the_size_of_its_xml(self) -> None:
        # 300,000 strings: 6.6 MB of XML; as a list of str (openpyxl) ~19 MB besides the parse
        data = hostile.workbook_bytes(
            sheet(b'<row r="2"><c r="A2" t="s"><v>299999</v></c></row>'),
            strings=hostile.string_table(300_000),
        )
        result: list[Any] = []
        peak = peak_bytes(lambda: result.extend(read(data)))
        assert result == [(1, {"sku": "299999"})]
        assert peak < 6 * MB, f"reading held {peak / MB:.1f} MB"

    def test_an_index_past_the_table_is_a_damaged_file(self) -> None:
        data = hostile.workbook_bytes(
            sheet(b'<row r="2"><c r="A2" t="s"><v>7</v></c></row>'),
            strings=hostile.string_table(2),
        )
        with pytest.raises(CorruptFile, match="refers to shared string 7; there are 2"):
            read(data)


class TestSheetShape:
    def test_a_claimed_width_is_not_padded_and_rows_keep_their_values(self) -> None:
        data = hostile.workbook_bytes(hostile.many_rows_sheet(3))
        assert read(data) == [(n, {"sku": "x"}) for n in (1, 2, 3)]

    def test_a_gap_in_row_numbers_costs_nothing_and_numbers_follow_the_sheet(self) -> None:
        data = hostile.workbook_bytes(hostile.far_row_sheet(1_048_576))
        with open_reader(io.BytesIO(data), filename="b.xlsx") as reader:
            assert list(reader) == [(1_048_575, {"sku": "x"})]

    def test_resuming_skips_over_a_gap(self) -> None:
        data = hostile.workbook_bytes(
            sheet(
                b'<row r="3">' + inline("A3", "a") + b"</row>",
                b'<row r="9">' + inline("A9", "b") + b"</row>",
            )
        )
        assert read(data, start_after=5) == [(8, {"sku": "b"})]
        assert read(data, start_after=2) == [(8, {"sku": "b"})]
        assert read(data, start_after=1) == [(2, {"sku": "a"}), (8, {"sku": "b"})]

    def test_more_cells_in_a_row_than_excel_has_columns_is_a_damaged_file(self) -> None:
        row = b'<row r="2">' + b'<c r="A2" t="inlineStr"><is><t>x</t></is></c>' * 16_385 + b"</row>"
        with pytest.raises(CorruptFile, match="more than 16384 cells"):
            read(hostile.workbook_bytes(sheet(row)))

    def test_values_are_those_openpyxl_reads(self) -> None:
        header = ["int", "float", "bool", "datetime", "date", "text", "formula", "big"]
        values = [3, 2.5, True, datetime(2024, 5, 1, 10, 30), date(2024, 5, 1), "Ü «x»", "=1+1"]
        data = xlsx_bytes([header, [*values, 10**15], [-1, 1e-7, False, None, None, " ", None]])
        sheet = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True).active
        expected = [
            {name: v for name, v in zip(header, row, strict=False) if v is not None and v != ""}
            for row in list(sheet.iter_rows(values_only=True))[1:]  # type: ignore[union-attr]
        ]
        assert [row for _, row in read(data)] == expected


def damaged_member(data: bytes) -> bytes:
    """The workbook with its sheet's compressed bytes flipped in the middle."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo("xl/worksheets/sheet1.xml")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    middle = start + info.compress_size // 2
    return data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 8]) + data[middle + 8 :]


class TestMalformed:
    def test_the_billion_laughs_is_refused_before_any_expansion(self) -> None:
        data = hostile.workbook_bytes(hostile.laughing_sheet())
        refused: list[Exception] = []

        def attempt() -> None:
            try:
                read(data)
            except CorruptFile as error:
                refused.append(error)

        assert peak_bytes(attempt) < 4 * MB
        assert "declares a DTD" in str(refused[0])

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            (hostile.workbook_bytes(hostile.laughing_sheet()), "declares a DTD"),
            (hostile.workbook_bytes([b"<worksheet><sheetData><row>"]), "not well-formed"),
            (hostile.workbook_bytes([b"\xff\xfe<\x00w\x00"]), "not well-formed"),
            (b"PK\x03\x04" + b"\x00" * 100, "not a valid XLSX workbook"),
            (
                damaged_member(hostile.workbook_bytes(hostile.many_rows_sheet(50_000))),
                "damaged|not well-formed",
            ),
            (
                hostile.workbook_bytes(sheet(b'<row r="2"><c r="A2"><v>12abc</v></c></row>')),
                "not a number",
            ),
            (
                hostile.workbook_bytes(sheet(b'<row r="1"><c r="A1"><v>1</v></c></row>')),
                "row 1 after row 1",
            ),
        ],
        ids=["dtd", "truncated-xml", "bad-encoding", "bad-zip", "bad-deflate", "nan", "order"],
    )
    def test_a_malformed_workbook_fails_for_good(self, data: bytes, message: str) -> None:
        with pytest.raises(CorruptFile, match=message) as failure:
            read(data)
        assert isinstance(failure.value, PermanentFailure)  # the worker does not retry it

    def test_a_huge_tag_is_a_damaged_file_and_is_not_held(self) -> None:
        # expat holds a tag whole: a 100 MB attribute packs into 100 KB
        huge = b'<row r="2"><c r="A2" s="' + b"9" * 100_000_000 + b'"/></row>'
        data = hostile.workbook_bytes(sheet(huge))
        refused: list[Exception] = []

        def attempt() -> None:
            try:
                read(data)
            except CorruptFile as error:
                refused.append(error)

        assert peak_bytes(attempt) < 16 * MB
        assert "has a tag or comment longer than 4194304 bytes" in str(refused[0])

    def test_a_part_read_whole_is_bounded(self) -> None:
        with pytest.raises(LimitExceeded, match=r"is \d+ bytes; the limit is 100"):
            read(xlsx_bytes([["a"], ["x"]]), limits=ReadLimits(max_xml_part_bytes=100))


def drain(batches: Batches, size: int) -> None:
    while batches.next(size) is not None:
        pass


class TestStop:
    @pytest.mark.parametrize("fmt", ["csv", "xlsx"])
    def test_a_stop_from_another_thread_ends_a_read_at_its_next_chunk(self, fmt: str) -> None:
        rows = 200_000
        data = (
            hostile.workbook_bytes(hostile.many_rows_sheet(rows))
            if fmt == "xlsx"
            # rows of empty quoted cells: no row for a batch to end on, each parsed alone
            else b"sku\n" + b'"",""\n' * (rows * 20)
        )
        stop = streams.Stop()
        reader = open_reader(io.BytesIO(data), filename=f"f.{fmt}", stop=stop)
        batches = Batches(reader, SCHEMAS["product"])
        threading.Timer(0.05, stop.set).start()
        with pytest.raises(streams.Stopped):
            drain(batches, rows * 2)
        assert reader.position < rows
        reader.close()
