"""open_reader: CSV, JSON Lines and XLSX, gzip, limits, row numbering and resuming."""

from __future__ import annotations

import codecs
import gzip
import io
from datetime import datetime
from typing import Any

import pytest

from service.bulk.errors import BadHeader, CorruptFile, LimitExceeded, NotUtf8
from service.bulk.limits import ReadLimits
from service.bulk.readers import Reader, open_reader
from service.bulk.rows import RowError
from service.bulk.sniffing import Format
from tests.unit.bulk import hostile
from tests.unit.bulk.samples import xlsx_bytes


def read(data: bytes, **options: Any) -> list[tuple[int, dict[str, Any] | RowError]]:
    with open_reader(io.BytesIO(data), **options) as reader:
        return list(reader)


def cells(rows: list[tuple[int, dict[str, Any] | RowError]]) -> list[dict[str, Any]]:
    return [row for _, row in rows if isinstance(row, dict)]


class _Unseekable(io.RawIOBase):
    """An upload stream that cannot seek, like a network body."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._data.readinto(buffer)


class TestCsv:
    def test_rows_are_keyed_by_the_header_and_numbered_after_it(self) -> None:
        rows = read(b"sku,name\r\nA,Apple\r\nB,Banana\r\n")
        assert rows == [(1, {"sku": "A", "name": "Apple"}), (2, {"sku": "B", "name": "Banana"})]

    def test_empty_cells_are_left_out_and_header_names_stripped(self) -> None:
        assert read(b" sku , name ,price\nA,,1\n") == [(1, {"sku": "A", "price": "1"})]

    def test_blank_lines_are_skipped_but_keep_their_number(self) -> None:
        rows = read(b"sku,name\nA,x\n\n,\nB,y\n")
        assert [number for number, _ in rows] == [1, 4]

    def test_the_utf8_bom_is_dropped(self) -> None:
        with open_reader(io.BytesIO(codecs.BOM_UTF8 + "sku,näme\nA,ü\n".encode())) as reader:
            assert reader.columns == ("sku", "näme")
            assert list(reader) == [(1, {"sku": "A", "näme": "ü"})]

    @pytest.mark.parametrize("delimiter", [";", "\t", "|", ","])
    def test_the_delimiter_is_sniffed(self, delimiter: str) -> None:
        data = delimiter.join(["sku", "name", "note"]) + "\n" + delimiter.join(["A", "x", "y"])
        with open_reader(io.BytesIO(data.encode())) as reader:
            assert reader.delimiter == delimiter  # type: ignore[attr-defined]
            assert list(reader) == [(1, {"sku": "A", "name": "x", "note": "y"})]

    def test_a_given_delimiter_overrides_the_sniffer(self) -> None:
        assert read(b"a;b,c\n1;2,3\n", delimiter=";") == [(1, {"a": "1", "b,c": "2,3"})]

    def test_quoted_cells_keep_delimiters_quotes_and_newlines(self) -> None:
        rows = read(b'sku,note\nA,"one, ""two""\r\nthree"\nB,x\n')
        assert rows == [
            (1, {"sku": "A", "note": 'one, "two"\r\nthree'}),
            (2, {"sku": "B", "note": "x"}),
        ]

    def test_a_row_of_the_wrong_width_is_a_row_error(self) -> None:
        rows = read(b"a,b,c\n1,2\n1,2,3,4\n1,2,3\n")
        assert rows[0] == (
            1,
            RowError(1, None, None, "row has 2 values but the header has 3 columns"),
        )
        assert rows[1][1] == RowError(
            2, None, None, "row has 4 values but the header has 3 columns"
        )
        assert rows[2] == (3, {"a": "1", "b": "2", "c": "3"})

    def test_a_quoted_cell_past_the_parsers_field_limit_fails_the_file(self) -> None:
        # the csv module would go on mid-cell, turning every later line into a row of garbage
        limits = ReadLimits(max_line_chars=10_000, max_cell_chars=100)
        big = b'"' + b"x\n" * 70_000 + b'"'
        with pytest.raises(CorruptFile, match="runs on for more than 131072 characters"):
            read(b"a\n" + big + b"\nok\n", limits=limits)

    def test_neutralised_cells_are_restored(self) -> None:
        rows = read(b"name,phone,note\n'=SUM(A1),'+4930123,O'Brien\n")
        assert rows == [(1, {"name": "=SUM(A1)", "phone": "+4930123", "note": "O'Brien"})]

    def test_a_quote_inside_text_is_kept(self) -> None:
        assert read(b"name\nO'Brien\n'plain\n") == [
            (1, {"name": "O'Brien"}),
            (2, {"name": "'plain"}),
        ]

    def test_an_empty_file_has_no_header(self) -> None:
        with pytest.raises(BadHeader, match="the file is empty"):
            read(b"", fmt="csv")

    @pytest.mark.parametrize(
        ("header", "message"),
        [(b"sku,,name", "column 2 of the header has no name"), (b"a,b,a", "more than once: a")],
    )
    def test_a_bad_header_is_a_bad_file(self, header: bytes, message: str) -> None:
        with pytest.raises(BadHeader, match=message):
            read(header + b"\n1,2,3\n")

    def test_too_many_columns(self) -> None:
        with pytest.raises(LimitExceeded, match="3 columns; the limit is 2"):
            read(b"a,b,c\n", limits=ReadLimits(max_columns=2))

    def test_old_mac_line_ends_are_lines_too(self) -> None:
        data = b"a,b\r" + b"1,2\r" * 50_000
        rows = read(data, limits=ReadLimits(max_line_chars=1000))
        assert len(rows) == 50_000
        assert rows[-1] == (50_000, {"a": "1", "b": "2"})

    def test_an_overlong_line_fails_the_file(self) -> None:
        data = b"a,b\n" + b"x" * 5000 + b",y\n"
        with pytest.raises(LimitExceeded, match="longer than 1000 bytes"):
            read(data, limits=ReadLimits(max_line_chars=1000))

    def test_a_line_without_any_newline_fails_the_file(self) -> None:
        with pytest.raises(LimitExceeded, match="longer than 100000 bytes"):
            read(b"a" * 300_000, limits=ReadLimits(max_line_chars=100_000))

    def test_an_overlong_cell_is_a_row_error(self) -> None:
        limits = ReadLimits(max_cell_chars=10)
        rows = read(b"a,b\nshort,x\n" + b"y" * 11 + b',x\n"multi\nline\ncell",x\n', limits=limits)
        assert rows[0] == (1, {"a": "short", "b": "x"})
        assert rows[1][1] == RowError(2, "a", "y" * 11, "a is longer than 10 characters")
        assert rows[2][1] == RowError(3, "a", "multi\nline\ncell", "a is longer than 10 characters")

    def test_latin1_is_refused_before_any_row(self) -> None:
        with pytest.raises(NotUtf8, match="byte 0xe9"):
            read("sku,name\nA,café\n".encode("latin-1"))

    def test_latin1_after_the_first_64_kib_fails_near_its_row(self) -> None:
        data = b"sku\n" + b"A\n" * 40_000 + "é\n".encode("latin-1")
        with open_reader(io.BytesIO(data)) as reader, pytest.raises(NotUtf8, match="near row"):
            list(reader)

    def test_the_callers_stream_stays_open(self) -> None:
        stream = io.BytesIO(b"a\n1\n")
        with open_reader(stream) as reader:
            list(reader)
        assert not stream.closed


class TestGzip:
    def test_gzip_is_found_by_its_magic_bytes_whatever_the_name(self) -> None:
        data = gzip.compress(b"sku,name\nA,x\n")
        with open_reader(io.BytesIO(data), filename="upload.csv") as reader:
            assert reader.compressed
            assert list(reader) == [(1, {"sku": "A", "name": "x"})]

    def test_a_gz_name_on_plain_bytes_reads_them_plainly(self) -> None:
        with open_reader(io.BytesIO(b"sku\nA\n"), filename="products.csv.gz") as reader:
            assert not reader.compressed
            assert list(reader) == [(1, {"sku": "A"})]

    @pytest.mark.parametrize("fmt", ["csv", "jsonl"])
    def test_a_non_seekable_stream_is_read(self, fmt: Format) -> None:
        text = b"sku\nA\n" if fmt == "csv" else b'{"sku": "A"}\n'
        for data in (text, gzip.compress(text)):
            stream = io.BufferedReader(_Unseekable(data))
            with open_reader(stream, fmt=fmt) as reader:
                assert list(reader) == [(1, {"sku": "A"})]

    def test_the_decompressed_size_is_bounded(self) -> None:
        bomb = gzip.compress(b"a\n" + b"1\n" * 500_000)
        with pytest.raises(LimitExceeded, match="decompresses to more than 100000 bytes"):
            read(bomb, limits=ReadLimits(max_decompressed_bytes=100_000))

    def test_a_truncated_gzip_is_a_corrupt_file(self) -> None:
        data = gzip.compress(b"a\n" + b"1234567890\n" * 20_000)
        with pytest.raises(CorruptFile, match="damaged or truncated"):
            read(data[: len(data) // 2])

    def test_garbage_after_the_magic_bytes_is_a_corrupt_file(self) -> None:
        with pytest.raises(CorruptFile):
            read(b"\x1f\x8b" + b"not gzip at all" * 10)


class TestJsonLines:
    def test_one_object_per_line_numbered_by_line(self) -> None:
        rows = read(b'{"sku": "A", "n": 1}\n\n{"sku": "B", "tags": ["x"]}\n', fmt="jsonl")
        assert rows == [(1, {"sku": "A", "n": 1}), (3, {"sku": "B", "tags": ["x"]})]

    def test_a_bad_line_is_a_row_error_and_reading_goes_on(self) -> None:
        rows = read(b'{"a": 1}\n{"a": \n[1, 2]\n{"a": 2}\n', filename="x.jsonl")
        assert rows[0] == (1, {"a": 1})
        assert isinstance(rows[1][1], RowError)
        assert rows[1][1].message.startswith("line is not valid JSON")
        assert rows[1][1].value == '{"a":'
        assert rows[2][1] == RowError(3, None, "[1, 2]", "line must be a JSON object")
        assert rows[3] == (4, {"a": 2})

    @pytest.mark.parametrize(
        "first", [b"[", b'[{"a": 1},', b"sku,name", b'"just a string"', b"{oops"]
    )
    def test_a_file_whose_first_line_is_no_object_is_not_json_lines(self, first: bytes) -> None:
        # a JSON array, a CSV named .jsonl: every line would be a row error; the file is wrong
        with pytest.raises(CorruptFile, match="not JSON Lines"):
            read(b"\n" + first + b'\n{"a": 1}\n', fmt="jsonl")

    def test_empty_strings_are_left_out_like_empty_cells(self) -> None:
        assert read(b'{"a": "", "b": "x", "c": null}\n', fmt="jsonl") == [
            (1, {"b": "x", "c": None})
        ]

    def test_an_overlong_line_is_a_row_error(self) -> None:
        data = b'{"a": "' + b"x" * 5000 + b'"}\n{"a": "ok"}\n'
        rows = read(data, fmt="jsonl", limits=ReadLimits(max_line_chars=1000))
        assert rows == [
            (1, RowError(1, None, None, "line is longer than 1000 characters")),
            (2, {"a": "ok"}),
        ]

    def test_an_overlong_value_and_too_many_keys_are_row_errors(self) -> None:
        limits = ReadLimits(max_cell_chars=5, max_columns=2)
        rows = read(b'{"a": "toolong"}\n{"a": 1, "b": 2, "c": 3}\n', fmt="jsonl", limits=limits)
        assert rows[0][1] == RowError(1, "a", "toolong", "a is longer than 5 characters")
        assert rows[1][1] == RowError(2, None, None, "line has 3 keys; the limit is 2")

    def test_bom_and_crlf_are_accepted(self) -> None:
        assert read(codecs.BOM_UTF8 + b'{"a": 1}\r\n', fmt="jsonl") == [(1, {"a": 1})]

    def test_has_no_header(self) -> None:
        with open_reader(io.BytesIO(b'{"a": 1}\n')) as reader:
            assert reader.format == "jsonl"
            assert reader.columns is None


class TestXlsx:
    def test_cells_keep_their_types(self) -> None:
        when = datetime(2024, 5, 1, 10, 30)
        data = xlsx_bytes([["sku", "qty", "price", "ok", "at"], ["A", 3, 1.5, True, when]])
        with open_reader(io.BytesIO(data)) as reader:
            assert reader.format == "xlsx"
            assert reader.columns == ("sku", "qty", "price", "ok", "at")
            assert list(reader) == [
                (1, {"sku": "A", "qty": 3, "price": 1.5, "ok": True, "at": when})
            ]

    def test_blank_rows_are_skipped_and_empty_cells_left_out(self) -> None:
        data = xlsx_bytes([["a", "b"], ["x", None], [None, None], [None, "y"]])
        assert read(data) == [(1, {"a": "x"}), (3, {"b": "y"})]

    def test_values_beyond_the_header_are_a_row_error(self) -> None:
        rows = read(xlsx_bytes([["a"], ["x", "stray"]]))
        assert rows == [
            (1, RowError(1, None, None, "row has values beyond the last header column"))
        ]

    def test_an_overlong_cell_is_a_row_error(self) -> None:
        rows = read(xlsx_bytes([["a"], ["x" * 20]]), limits=ReadLimits(max_cell_chars=10))
        assert rows == [(1, RowError(1, "a", "x" * 20, "a is longer than 10 characters"))]

    def test_trailing_empty_header_cells_are_ignored(self) -> None:
        data = xlsx_bytes([["a", "b", None], ["1", "2"]])
        with open_reader(io.BytesIO(data)) as reader:
            assert reader.columns == ("a", "b")

    def test_an_empty_first_row_is_a_bad_header(self) -> None:
        with pytest.raises(BadHeader, match="first row of the first sheet is empty"):
            read(xlsx_bytes([[None], ["x"]]))

    def test_a_gzipped_workbook_is_read(self) -> None:
        data = gzip.compress(xlsx_bytes([["a"], ["x"]]))
        with open_reader(io.BytesIO(data), filename="book.xlsx.gz") as reader:
            assert reader.compressed
            assert list(reader) == [(1, {"a": "x"})]

    def test_a_non_seekable_workbook_is_read(self) -> None:
        stream = io.BufferedReader(_Unseekable(xlsx_bytes([["a"], ["x"]])))
        assert not stream.seekable()
        with open_reader(stream) as reader:
            assert list(reader) == [(1, {"a": "x"})]

    def test_a_broken_zip_is_a_corrupt_file(self) -> None:
        with pytest.raises(CorruptFile, match="not a valid XLSX workbook"):
            read(b"PK\x03\x04" + b"\x00" * 100)

    def test_the_unpacked_size_is_bounded(self) -> None:
        data = xlsx_bytes([["a"], *[["x" * 100] for _ in range(100)]])
        with pytest.raises(LimitExceeded, match="unpacks to"):
            read(data, limits=ReadLimits(max_decompressed_bytes=5_000))

    def test_the_shared_string_table_is_bounded(self) -> None:
        data = hostile.workbook_bytes(hostile.many_rows_sheet(1), strings=hostile.string_table(200))
        with pytest.raises(LimitExceeded, match=r"string table is [0-9]+ bytes; the limit is 1000"):
            read(data, limits=ReadLimits(max_shared_strings_bytes=1_000))


def _csv_data() -> bytes:
    return b"n\n" + b"".join(f"{i}\n".encode() for i in range(1, 11))


def _jsonl_data() -> bytes:
    return b"".join(f'{{"n": "{i}"}}\n'.encode() for i in range(1, 11))


def _xlsx_data() -> bytes:
    return xlsx_bytes([["n"], *[[str(i)] for i in range(1, 11)]])


DATA = {"csv": _csv_data, "jsonl": _jsonl_data, "xlsx": _xlsx_data}


class TestResume:
    @pytest.mark.parametrize("fmt", sorted(DATA))
    @pytest.mark.parametrize("compressed", [False, True])
    def test_start_after_continues_with_the_next_row(self, fmt: str, compressed: bool) -> None:
        data = DATA[fmt]()
        if compressed:
            data = gzip.compress(data)
        with open_reader(io.BytesIO(data), start_after=6) as reader:
            assert reader.position == 6
            rows = list(reader)
        assert rows == [(i, {"n": str(i)}) for i in range(7, 11)]

    @pytest.mark.parametrize("fmt", sorted(DATA))
    def test_skip_counts_rows_and_stops_at_the_end(self, fmt: str) -> None:
        reader: Reader = open_reader(io.BytesIO(DATA[fmt]()))
        assert reader.skip(3) == 3
        assert next(iter(reader)) == (4, {"n": "4"})
        assert reader.skip(100) == 6
        assert reader.position == 10
        assert list(reader) == []
        reader.close()

    def test_skipping_counts_blank_and_bad_rows_like_reading(self) -> None:
        data = b'a\n"x\n' + b"\n" + b"1,2\n" + b"ok\n"  # a quoted cell that runs to the end
        full = read(b"a\n\n1,2\nok\n")
        assert full == [
            (2, RowError(2, None, None, "row has 2 values but the header has 1 columns")),
            (3, {"a": "ok"}),
        ]
        assert read(b"a\n\n1,2\nok\n", start_after=2) == [(3, {"a": "ok"})]
        assert read(data, start_after=1) == []

    def test_skipping_jsonl_does_not_parse_the_lines(self) -> None:
        data = b"not json\n" * 5 + b'{"a": 1}\n'
        assert read(data, fmt="jsonl", start_after=5) == [(6, {"a": 1})]
