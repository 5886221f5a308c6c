"""Format, encoding and delimiter detection."""

from __future__ import annotations

import codecs

import pytest

from service.bulk import sniffing
from service.bulk.errors import NotUtf8, UnknownFormat


class TestDetectFormat:
    @pytest.mark.parametrize(
        ("filename", "expected"),
        [
            ("products.csv", "csv"),
            ("PRODUCTS.CSV.GZ", "csv"),
            ("export.tsv", "csv"),
            ("rows.jsonl", "jsonl"),
            ("rows.ndjson.gz", "jsonl"),
            ("book.xlsx", "xlsx"),
        ],
    )
    def test_the_extension_decides(self, filename: str, expected: str) -> None:
        head = b"PK\x03\x04" if expected == "xlsx" else b"a,b\n"
        assert sniffing.detect_format(head, fmt=None, filename=filename) == expected

    @pytest.mark.parametrize(
        ("head", "expected"),
        [(b"PK\x03\x04rest", "xlsx"), (b'\xef\xbb\xbf \n{"a": 1}', "jsonl"), (b"a;b\n1;2", "csv")],
    )
    def test_without_a_known_name_the_content_decides(self, head: bytes, expected: str) -> None:
        assert sniffing.detect_format(head, fmt=None, filename="upload.bin") == expected
        assert sniffing.detect_format(head, fmt=None, filename=None) == expected

    def test_the_callers_format_wins_over_the_name(self) -> None:
        assert sniffing.detect_format(b'{"a":1}', fmt="jsonl", filename="x.csv") == "jsonl"

    def test_a_zip_is_not_accepted_as_text(self) -> None:
        with pytest.raises(UnknownFormat, match="zip archive"):
            sniffing.detect_format(b"PK\x03\x04", fmt="csv", filename=None)

    def test_xlsx_needs_a_zip(self) -> None:
        with pytest.raises(UnknownFormat, match="not an XLSX"):
            sniffing.detect_format(b"a,b\n", fmt=None, filename="book.xlsx")

    def test_parse_format(self) -> None:
        assert sniffing.parse_format(" JSONL ") == "jsonl"
        with pytest.raises(UnknownFormat, match="csv, jsonl, xlsx"):
            sniffing.parse_format("xml")


class TestCheckUtf8:
    def test_utf8_with_and_without_bom_passes(self) -> None:
        sniffing.check_utf8("naïve,ü\n".encode(), complete=True)
        sniffing.check_utf8(codecs.BOM_UTF8 + "ü".encode(), complete=True)

    def test_a_character_cut_at_the_end_of_the_head_passes(self) -> None:
        sniffing.check_utf8("aü".encode()[:-1], complete=False)

    @pytest.mark.parametrize(
        ("bom", "name"), [(codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF32_BE, "UTF-32")]
    )
    def test_other_unicode_encodings_are_named(self, bom: bytes, name: str) -> None:
        with pytest.raises(NotUtf8, match=f"is {name} encoded; save it as UTF-8"):
            sniffing.check_utf8(bom + "a".encode("utf-16-le"), complete=True)

    def test_latin1_is_refused_with_the_offending_byte(self) -> None:
        with pytest.raises(NotUtf8, match=r"byte 0xe9 at offset 8 .*save it as UTF-8"):
            sniffing.check_utf8("name,café".encode("latin-1"), complete=True)

    def test_utf16_without_bom_is_refused(self) -> None:
        with pytest.raises(NotUtf8, match="NUL bytes"):
            sniffing.check_utf8("sku,name".encode("utf-16-le"), complete=True)


class TestSniffDelimiter:
    @pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
    def test_finds_each_candidate(self, delimiter: str) -> None:
        assert sniffing.sniff_delimiter(delimiter.join(["sku", "name", "price"])) == delimiter

    def test_delimiters_inside_quotes_do_not_count(self) -> None:
        assert sniffing.sniff_delimiter('"a,b,c";"d,e";f') == ";"

    def test_a_tie_goes_to_the_comma(self) -> None:
        assert sniffing.sniff_delimiter("a,b;c") == ","

    def test_a_single_column_uses_the_comma(self) -> None:
        assert sniffing.sniff_delimiter("sku") == ","
