"""Every operation of the OpenAPI document shows an example request and answer, and each
example is valid against the schema it illustrates (so the docs never show a wrong one)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

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
