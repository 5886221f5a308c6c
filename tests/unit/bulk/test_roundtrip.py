"""Export what was imported: equal records for every entity and format, equal bytes for text."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from service.bulk import pipeline
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


def export(entity: str, records: list[Any], fmt: Format, compress: bool) -> bytes:
    schema = SCHEMAS[entity]
    out = io.BytesIO()
    with open_writer(out, fmt, schema.columns, gzip=compress) as writer:
        writer.write_rows(schema.to_row(record) for record in records)
    return out.getvalue()


def import_(entity: str, data: bytes) -> list[Any]:
    schema = SCHEMAS[entity]
    with open_reader(io.BytesIO(data)) as reader:
        assert schema.check_header(reader.columns) == ()
        checked = list(pipeline.check_rows(reader, schema))
    assert [row.errors for row in checked] == [()] * len(checked)
    return [row.record for row in checked]


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("entity", ENTITIES)
def test_exported_records_import_as_equal_records(entity: str, fmt: Format, compress: bool) -> None:
    records = records_of(entity)
    assert import_(entity, export(entity, records, fmt, compress)) == records


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize("entity", ENTITIES)
def test_a_second_export_is_byte_for_byte_the_first(
    entity: str, fmt: Format, compress: bool
) -> None:
    first = export(entity, records_of(entity), fmt, compress)
    second = export(entity, import_(entity, first), fmt, compress)
    assert second == first


def test_a_hand_made_csv_settles_after_one_round() -> None:
    upload = (
        "\ufeffsku;name;price;currency;stock;attributes;extra\r\n"
        ' A-1 ;=1+1;12.5;eur;3;{"b": 1, "a": 2.50};x\r\n'
        "B;'-minus;0;USD;;;\r\n"
    ).encode()
    records = import_product_upload(upload)
    first = export("product", records, "csv", False)
    assert first.decode().splitlines() == [
        "sku,name,description,price,currency,stock,category,attributes",
        'A-1,\'=1+1,,12.50,EUR,3,,"{""b"":1,""a"":2.5}"',
        "B,'-minus,,0.00,USD,0,,{}",  # the upload's quote was a spreadsheet's text marker
    ]
    assert export("product", import_("product", first), "csv", False) == first


def import_product_upload(data: bytes) -> list[Any]:
    schema = SCHEMAS["product"]
    with open_reader(io.BytesIO(data)) as reader:
        assert schema.check_header(reader.columns) == ("extra",)
        return [row.record for row in pipeline.check_rows(reader, schema)]


@pytest.mark.parametrize("entity", ENTITIES)
def test_json_ready_records_validate_back_to_themselves(entity: str) -> None:
    schema = SCHEMAS[entity]
    for record in records_of(entity):
        assert schema.validate_row(record.model_dump(mode="json")) == (record, ())
        assert schema.jsonable([record]) == [record.model_dump(mode="json")]
        assert json.loads(schema.dump_json([record])) == [record.model_dump(mode="json")]
