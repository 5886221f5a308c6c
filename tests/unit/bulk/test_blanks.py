"""Blank input: runs of blank lines read in bulk with the file's row numbers, and the bound
on blank input against the compressed upload. Behaviour only; what it costs is measured
by bench/bench_bulk_hostile.py."""

from __future__ import annotations

import gzip
import io
import random
import zipfile
from typing import Any

import pytest

from service.bulk import blanks
from service.bulk.errors import LimitExceeded
from service.bulk.limits import ReadLimits
from service.bulk.readers import open_reader
from service.bulk.rows import RowError
from tests.unit.bulk import hostile

Rows = list[tuple[int, dict[str, Any] | RowError]]
#: Far more than one 64 KiB chunk, so that runs cross chunk boundaries.
LONG = 150_000


def read(data: bytes, **options: Any) -> Rows:
    with open_reader(io.BytesIO(data), **options) as reader:
        return list(reader)


def read_one_by_one(data: bytes, monkeypatch: pytest.MonkeyPatch, **options: Any) -> Rows:
    """What the reader yields when every blank line reaches the parser."""
    with monkeypatch.context() as patched:
        patched.setattr(blanks.BlankLines, "_worth_a_look", lambda self, body: False)
        return read(data, **options)


def blank_count(data: bytes, **options: Any) -> int:
    """The blank input the reader counted: a run taken out in bulk counts its bytes, a
    blank line the parser handled alone 16 more."""
    with open_reader(io.BytesIO(data), **options) as reader:
        list(reader)
        return reader.blank_budget.count


class TestCsvRuns:
    @pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
    def test_rows_keep_their_numbers_across_long_runs(self, eol: bytes) -> None:
        data = eol.join(
            [
                b"sku,name",
                b"A,x",
                *[b""] * LONG,
                b"B,y",
                *[b",,"] * LONG,  # a sheet's empty rows: delimiters only
                b"C,z",
                b"",
            ]
        )
        assert read(data) == [
            (1, {"sku": "A", "name": "x"}),
            (LONG + 2, {"sku": "B", "name": "y"}),
            (2 * LONG + 3, {"sku": "C", "name": "z"}),
        ]

    def test_the_runs_are_taken_out_in_bulk(self) -> None:
        # 64 KiB at most reach the parser line by line (the chunk read with the header)
        run = b"\n" * (4 * 1024**2)
        assert blank_count(b"sku\nA\n" + run + b"B\n") < 2 * len(run)

    def test_a_quoted_cell_keeps_its_blank_lines(self) -> None:
        cell = "one" + "\r\n" * 5 + "two" + "\n" * 100_000 + "three"  # under the field limit
        data = (
            b"sku,note\n"
            + b"\n" * LONG
            + b'A,"'
            + cell.encode()
            + b'"\n'
            + b"\n" * LONG
            + b'B,"x ""quoted"",\n\ny"\n'
            + b"\n" * LONG
            + b"C,z\n"
        )
        limits = ReadLimits(max_line_chars=LONG * 2, max_cell_chars=LONG * 2)
        rows = read(data, limits=limits)
        assert rows == [
            (LONG + 1, {"sku": "A", "note": cell}),
            (2 * LONG + 2, {"sku": "B", "note": 'x "quoted",\n\ny'}),
            (3 * LONG + 3, {"sku": "C", "note": "z"}),
        ]

    def test_a_stray_quote_does_not_open_a_cell(self) -> None:
        data = b'sku,name\nA,27" screen\n' + b"\n" * LONG + b'B,"x"\n' + b"\n" * LONG + b"C,z\n"
        assert [number for number, _ in read(data)] == [1, LONG + 2, 2 * LONG + 3]

    @pytest.mark.parametrize("start_after", [1, 2, LONG, LONG + 1, LONG + 2])
    def test_resuming_inside_or_after_a_run(self, start_after: int) -> None:
        data = b"sku\nA\n" + b"\n" * LONG + b"B\n" + b"\n" * LONG + b"C\n"
        rows = read(gzip.compress(data), start_after=start_after)
        expected = [(LONG + 2, {"sku": "B"}), (2 * LONG + 3, {"sku": "C"})]
        assert rows == [row for row in expected if row[0] > start_after]

    def test_whitespace_only_lines_are_read_as_before(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # a line of spaces is a row of the header's width with one column, blank otherwise
        data = b"sku,name\nA,x\n" + b"  \n" * LONG + b" , \n" * 10 + b"B,y\n"
        assert read(data) == read_one_by_one(data, monkeypatch)

    def test_reading_in_bulk_changes_nothing_that_is_read(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        for seed in range(10):
            data = _mixed_csv(random.Random(seed))
            upload = gzip.compress(data) if seed % 2 else data
            assert read(upload) == read_one_by_one(upload, monkeypatch), seed


class TestJsonLinesRuns:
    @pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
    def test_lines_keep_their_numbers_across_long_runs(self, eol: bytes) -> None:
        data = eol.join(
            [b'{"a": 1}', *[b""] * LONG, b'{"a": 2}', *[b" \t "] * LONG, b'{"a": 3}', b""]
        )
        assert read(data, fmt="jsonl") == [
            (1, {"a": 1}),
            (LONG + 2, {"a": 2}),
            (2 * LONG + 3, {"a": 3}),
        ]

    @pytest.mark.parametrize("start_after", [1, LONG, LONG + 2])
    def test_resuming_inside_or_after_a_run(self, start_after: int) -> None:
        data = b'{"a": 1}\n' + b"\n" * LONG + b'{"a": 2}\n' + b"  \n" * LONG + b'{"a": 3}\n'
        rows = read(data, fmt="jsonl", start_after=start_after)
        expected = [(LONG + 2, {"a": 2}), (2 * LONG + 3, {"a": 3})]
        assert rows == [row for row in expected if row[0] > start_after]

    def test_reading_in_bulk_changes_nothing_that_is_read(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        for seed in range(8):
            data = _mixed_jsonl(random.Random(seed))
            assert read(data, fmt="jsonl") == read_one_by_one(data, monkeypatch, fmt="jsonl")


class TestXlsxEmptyRows:
    def test_empty_rows_are_gaps_in_the_numbers(self) -> None:
        sheet = [
            hostile.SHEET_START.encode() + b"<sheetData>" + hostile.HEADER_ROW,
            b'<row r="2"><c r="A2" t="inlineStr"><is><t>A</t></is></c></row>',
            b"<row/>" * 1000 + b'<row r="5000"><c r="C5000"/></row>',
            b"<row><c><v>7</v></c></row>" + hostile.SHEET_END,
        ]
        assert read(hostile.workbook_bytes(sheet)) == [(1, {"sku": "A"}), (5000, {"sku": 7})]


MESSAGE = r"the file is mostly blank: [0-9,]+ bytes of blank lines or empty rows from [0-9,]+ "
#: A smaller allowance, so that a bomb is refused after a few MiB of blank input.
SMALL = ReadLimits(blank_allowance=1024**2)


class TestBlankBudget:
    def test_a_gzip_of_blank_lines_is_refused(self) -> None:
        upload = hostile.repeated_gzip(64)  # a header and 64 MiB of newlines in 65 KB
        with pytest.raises(LimitExceeded, match=MESSAGE + "bytes of compressed upload"):
            read(upload, filename="p.csv.gz")

    @pytest.mark.parametrize(
        "line", [b"\r\n", b",,,\r\n", b'"","","",""\r\n', b'""\n', b" \n", b"\xc2\xa0\n"]
    )
    def test_a_csv_of_rows_that_hold_nothing_is_refused(self, line: bytes) -> None:
        upload = hostile.repeated_gzip(16, line)
        with pytest.raises(LimitExceeded, match=MESSAGE):
            read(upload, filename="p.csv.gz", limits=SMALL)

    @pytest.mark.parametrize("line", [b"\n", b" \t\n", b"\xe3\x80\x80\n"])
    def test_a_json_lines_file_of_blank_lines_is_refused(self, line: bytes) -> None:
        upload = hostile.repeated_gzip(16, line, head=b'{"a": 1}\n')
        with pytest.raises(LimitExceeded, match=MESSAGE):
            read(upload, filename="p.jsonl.gz", limits=SMALL)

    @pytest.mark.parametrize(
        "sheet", [hostile.empty_rows_sheet(2_000_000), hostile.empty_cells_sheet(500)]
    )
    def test_a_workbook_of_empty_rows_or_cells_is_refused(self, sheet: Any) -> None:
        with pytest.raises(LimitExceeded, match=MESSAGE):
            read(hostile.workbook_bytes(sheet), limits=SMALL)

    def test_a_gzipped_workbook_is_measured_by_the_upload(self) -> None:
        # stored without compression in the zip, the sheet's ratio is the gzip's
        out = io.BytesIO()
        hostile.workbook(out, hostile.empty_rows_sheet(2_000_000), compression=zipfile.ZIP_STORED)
        with pytest.raises(LimitExceeded, match=MESSAGE):
            read(gzip.compress(out.getvalue()), filename="b.xlsx.gz", limits=SMALL)

    def test_legitimate_files_of_a_high_ratio_are_read(self) -> None:
        # one valid row repeated: 400 times smaller gzipped, and every line a row
        same = hostile.repeated_gzip(8, b"A-1,Shoe,1.00,EUR\n")
        assert len(same) * 300 < 8 * 1024**2
        assert len(read(same, filename="p.csv.gz")) == 8 * (1024**2 // 18)
        # a thousand rows, then a whole Excel sheet of empty rows
        rows = b"".join(b"S-%d,Shoe,1.00,EUR,%d,shoes,x,y,z,w\r\n" % (n, n) for n in range(1000))
        tail = b",,,,,,,,,\r\n" * 1_047_575
        sheet = gzip.compress(b"sku,name,price,currency,a,b,c,d,e,f\r\n" + rows + tail)
        assert len(rows + tail) > 300 * len(sheet)
        assert len(read(sheet, filename="p.csv.gz")) == 1000

    def test_an_uncompressed_file_is_not_bounded(self) -> None:
        assert read(b"sku\n" + b"\n" * (40 * 1024**2) + b"A\n") == [
            (40 * 1024**2 + 1, {"sku": "A"})
        ]

    def test_the_ratio_is_a_limit_of_the_read(self) -> None:
        upload = hostile.repeated_gzip(32)
        with pytest.raises(LimitExceeded, match="more than 100 times"):
            read(upload, filename="p.csv.gz")
        assert read(upload, filename="p.csv.gz", limits=ReadLimits(max_blank_ratio=2000)) == []


def _mixed_csv(rnd: random.Random) -> bytes:
    """Rows, runs of blank and delimiter-only lines, quoted cells spanning blank lines,
    stray quotes, and a mix of line ends: about 300 KB."""
    eol = rnd.choice([b"\n", b"\r\n", b"\r"])
    parts = [b"a,b,c"]
    cells = [b"x", b"", b"y y", b'O"k', b'"q"', b'"p,q"', b'"e""s"', b'"m\n\nl"', b'"\r\n\r\n"']
    size = 0
    while size < 300_000:
        pick = rnd.random()
        if pick < 0.4:
            part = eol + b",".join(rnd.choice(cells) for _ in range(rnd.choice([3, 3, 2, 4])))
        elif pick < 0.9:
            line = rnd.choice([b"", b",", b",,", b" "])
            part = (eol + line) * rnd.choice([1, 2, 50, 3000, 40_000])
        else:
            part = eol + b'x,"' + eol * rnd.choice([1, 3, 1000]) + b'",z'
        parts.append(part)
        size += len(part)
    return b"".join(parts) + eol


def _mixed_jsonl(rnd: random.Random) -> bytes:
    eol = rnd.choice([b"\n", b"\r\n", b"\r"])
    parts = [b'{"a": 0}']
    size = 0
    while size < 300_000:
        if rnd.random() < 0.4:
            line = rnd.choice([b'{"a": 1}', b'{"b": "x y"}', b"oops", b"\xc2\xa0", b"[1]"])
            part = eol + line
        else:
            part = (eol + rnd.choice([b"", b" ", b"\t \x0c"])) * rnd.choice([1, 40, 30_000])
        parts.append(part)
        size += len(part)
    return b"".join(parts) + eol
