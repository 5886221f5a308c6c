"""Export what was imported: equal records for every entity and format, equal bytes for text."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from service.bulk.pipeline import Batches
from service.bulk.readers import open_reader
from service.bulk.schemas import SCHEMAS
from service.bulk.sniffing import Format
from service.bulk.writers import open_writer
from tests.unit.bulk.samples import SAMPLES

ENTITIES = sorted(SCHEMAS)
FORMATS: list[Format] = ["csv", "jsonl", "xlsx"]


def records_of(entity: str) -> list[Any]:
    schema = SCHEMAS[entity]
    checked = [schema.validate_row(raw) for raw in SAMPLES[entity]]
    assert all(not problems for _, problems in checked)
    return [record for record, _ in checked]


def rows_of(entity: str) -> list[dict[str, Any]]:
    """The sample records as an import's candidates hold them and an export writes them."""
    return [SCHEMAS[entity].to_row(record) for record in records_of(entity)]


def export(entity: str, rows: list[dict[str, Any]], fmt: Format, compress: bool) -> bytes:
    schema = SCHEMAS[entity]
    out = io.BytesIO()
    with open_writer(out, fmt, schema.columns, gzip=compress) as writer:
        writer.write_rows(rows)
    return out.getvalue()


def import_(entity: str, data: bytes, *, extra: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The validated values of every row of the file; fails on any row error."""
    schema = SCHEMAS[entity]
    with open_reader(io.BytesIO(data)) as reader:
        assert schema.check_header(reader.columns) == extra
        checked = list(Batches(reader, schema))
    assert [error for batch in checked for error in batch.errors] == []
    return [candidate.fields for batch in checked for candidate in batch.candidates]


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("entity", ENTITIES)
def test_exported_records_import_as_equal_records(entity: str, fmt: Format, compress: bool) -> None:
    rows = rows_of(entity)
    assert import_(entity, export(entity, rows, fmt, compress)) == rows


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize("entity", ENTITIES)
def test_a_second_export_is_byte_for_byte_the_first(
    entity: str, fmt: Format, compress: bool
) -> None:
    first = export(entity, rows_of(entity), fmt, compress)
    second = export(entity, import_(entity, first), fmt, compress)
    assert second == first


def test_a_hand_made_csv_settles_after_one_round() -> None:
    upload = (
        "\ufeffsku;name;price;currency;stock;attributes;extra\r\n"
        ' A-1 ;=1+1;12.5;eur;3;{"b": 1, "a": 2.50};x\r\n'
        "B;'-minus;0;USD;;;\r\n"
    ).encode()
    first = export("product", import_("product", upload, extra=("extra",)), "csv", False)
    assert first.decode().splitlines() == [
        "sku,name,description,price,currency,stock,category,attributes",
        'A-1,\'=1+1,,12.50,EUR,3,,"{""b"":1,""a"":2.5}"',
        "B,'-minus,,0.00,USD,0,,{}",  # the upload's quote was a spreadsheet's text marker
    ]
    assert export("product", import_("product", first), "csv", False) == first


@pytest.mark.parametrize("entity", ENTITIES)
def test_json_ready_records_validate_back_to_themselves(entity: str) -> None:
    schema = SCHEMAS[entity]
    for record in records_of(entity):
        assert schema.validate_row(record.model_dump(mode="json")) == (record, ())
        assert schema.jsonable([record]) == [record.model_dump(mode="json")]
        assert json.loads(schema.dump_json([record])) == [record.model_dump(mode="json")]
