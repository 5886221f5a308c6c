"""Every operation of the OpenAPI document shows an example request and answer, and each
example is valid against the schema it illustrates (so the docs never show a wrong one)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from service.api.examples import add_examples, derive_example
from service.app import create_app
from tests.fixtures.app import make_settings

Example = tuple[str, dict[str, Any], dict[str, Any]]


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data: Path = tmp_path_factory.mktemp("examples")
    document: dict[str, Any] = create_app(
        make_settings(f"sqlite+aiosqlite:///{data / 'ops.db'}", data)
    ).openapi()
    return document


def _schema(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    resolved: dict[str, Any] = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return resolved


def _examples(spec: dict[str, Any], media: dict[str, Any]) -> list[Any]:
    """The examples a media type shows: its own, else its schema's."""
    if "example" in media:
        return [media["example"]]
    if "examples" in media:
        return [e["value"] for e in media["examples"].values()]
    return list(_schema(spec, media.get("schema", {})).get("examples", []))


def _media(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every request body's media types, and every 2xx JSON answer's."""
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            for media_type, media in operation.get("requestBody", {}).get("content", {}).items():
                yield f"{method.upper()} {path} request {media_type}", media
            for code, answer in operation.get("responses", {}).items():
                for media_type, media in answer.get("content", {}).items():
                    if code.startswith("2") and "json" in media_type:
                        yield f"{method.upper()} {path} {code} {media_type}", media


def test_every_request_body_and_json_answer_has_an_example(spec: dict[str, Any]) -> None:
    missing = [where for where, media in _media(spec) if not _examples(spec, media)]
    assert not missing, missing


def test_every_example_is_valid_against_its_schema(spec: dict[str, Any]) -> None:
    checked = 0
    for where, media in _media(spec):
        if "multipart" in where:  # a file part is bytes, not JSON text
            continue
        schema = {**media.get("schema", {}), "components": spec["components"]}
        validator = Draft202012Validator(schema)
        for example in _examples(spec, media):
            errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(example)]
            assert not errors, (where, errors)
            checked += 1
    assert checked >= 30


#: a small hand-made document's components: a recursive one, one with its own example
COMPONENTS: dict[str, Any] = {
    "schemas": {
        "User": {
            "type": "object",
            "required": ["id"],
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "manager": {"$ref": "#/components/schemas/User"},
            },
        },
        "Money": {
            "type": "object",
            "required": ["amount", "currency"],
            "properties": {
                "amount": {"type": "string", "pattern": r"^\d+\.\d{2}$"},
                "currency": {"type": "string", "minLength": 3, "maxLength": 3},
            },
            "examples": [{"amount": "12.50", "currency": "EUR"}],
        },
        "Window": {
            "type": "object",
            "required": ["days"],
            "properties": {"days": {"type": "integer", "minimum": 1, "maximum": 31}},
        },
    }
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["kind", "name", "labels", "owner", "price"],
    "additionalProperties": False,
    "properties": {
        "kind": {"type": "string", "enum": ["export", "import"]},
        "name": {
            "type": "string",
            "minLength": 3,
            "maxLength": 10,
            "pattern": r"^[a-z][a-z0-9_.-]{0,63}$",
        },
        "labels": {
            "type": "array",
            "items": {"type": "string", "enum": ["a", "b", "c"]},
            "minItems": 2,
            "uniqueItems": True,
        },
        "owner": {"$ref": "#/components/schemas/User"},
        "price": {"$ref": "#/components/schemas/Money"},
        "note": {"anyOf": [{"type": "string", "maxLength": 5}, {"type": "null"}]},
        "count": {"type": "integer", "exclusiveMinimum": 10, "maximum": 12},
        "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "at": {"type": "string", "format": "date-time"},
        "window": {"allOf": [{"$ref": "#/components/schemas/Window"}], "description": "when"},
        "code": {"type": "string", "pattern": r"^ZZ\d{9}$"},  # no candidate fits: left out
    },
}


def test_a_derived_example_validates_against_its_schema() -> None:
    [example] = derive_example(SCHEMA, COMPONENTS)

    validator = Draft202012Validator(
        {**SCHEMA, "components": COMPONENTS}, format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    assert [e.message for e in validator.iter_errors(example)] == []
    assert example["kind"] == "export"
    assert example["labels"] == ["a", "b"]
    assert example["owner"] == {"id": example["owner"]["id"]}  # User not again inside User
    assert example["price"] == {"amount": "12.50", "currency": "EUR"}  # the component's own
    assert isinstance(example["note"], str)
    assert example["count"] == 11
    assert 0 < example["ratio"] < 1
    assert example["window"] == {"days": 1}
    assert "code" not in example
    assert derive_example(SCHEMA, COMPONENTS) == [example]  # deterministic


def test_no_example_is_derived_when_a_required_value_cannot_be_made() -> None:
    schema = {
        "type": "object",
        "required": ["code"],
        "properties": {"code": {"type": "string", "pattern": r"^ZZ\d{9}$"}},
    }
    assert derive_example(schema, COMPONENTS) == []


def test_no_example_is_derived_for_a_schema_the_validator_cannot_read() -> None:
    nowhere = {"$ref": "#/components/schemas/Nowhere"}
    assert derive_example(nowhere, COMPONENTS) == []
    assert derive_example({"type": "string", "allOf": [nowhere]}, COMPONENTS) == []
    assert derive_example({"type": "string", "pattern": "(["}, COMPONENTS) == []


def test_an_operation_without_a_possible_example_stays_without_one() -> None:
    """So test_every_request_body_and_json_answer_has_an_example names it."""
    impossible = {
        "type": "object",
        "required": ["code"],
        "properties": {"code": {"type": "string", "pattern": r"^ZZ\d{9}$"}},
    }
    thing = {"$ref": "#/components/schemas/Thing"}
    document: dict[str, Any] = {
        "components": {"schemas": {**COMPONENTS["schemas"], "Thing": SCHEMA}},
        "paths": {
            "/things": {
                "post": {
                    "requestBody": {"content": {"application/json": {"schema": impossible}}},
                    "responses": {"201": {"content": {"application/json": {"schema": thing}}}},
                }
            }
        },
    }
    add_examples(document)

    operation = document["paths"]["/things"]["post"]
    assert "example" not in operation["requestBody"]["content"]["application/json"]
    assert document["components"]["schemas"]["Thing"]["examples"] == derive_example(
        SCHEMA, COMPONENTS
    )
