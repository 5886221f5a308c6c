"""Which content types an import's input may have: parameters and case do not matter."""

from __future__ import annotations

import pytest

from service.usecases.content_types import UnsupportedMediaType, check_import_type, content_type_of


@pytest.mark.parametrize(
    "content_type",
    [
        "text/csv",
        "Text/CSV; charset=utf-8",
        "application/x-ndjson",
        "APPLICATION/JSONL",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/gzip",
        "application/octet-stream",
    ],
)
def test_types_the_import_reads_pass(content_type: str) -> None:
    check_import_type(content_type, field="contentType")


@pytest.mark.parametrize(
    "content_type", ["application/pdf", "image/png", "text/html; charset=utf-8", "text/csvx"]
)
def test_other_types_are_refused_naming_the_field_and_the_accepted_ones(
    content_type: str,
) -> None:
    with pytest.raises(UnsupportedMediaType) as refused:
        check_import_type(content_type, field="contentType")
    assert refused.value.field == "contentType"
    assert refused.value.detail.endswith(f"; not {content_type}")
    assert "text/csv, text/plain" in refused.value.detail


@pytest.mark.parametrize(
    ("name", "declared", "expected"),
    [
        ("p.csv", None, "text/csv"),
        ("p.tsv", None, "text/tab-separated-values"),  # the import reads .tsv as CSV
        ("p.xlsx", None, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        ("p.JSONL", None, "application/x-ndjson"),  # fixed: hosts' mime.types disagree
        ("p.ndjson", None, "application/x-ndjson"),
        ("p.csv.gz", None, "application/gzip"),
        ("p", None, "application/octet-stream"),
        ("p.csv", "application/csv", "application/csv"),
    ],
)
def test_every_name_an_import_accepts_has_an_accepted_type(
    name: str, declared: str | None, expected: str
) -> None:
    assert content_type_of(name, declared) == expected
    check_import_type(expected, field="contentType")
