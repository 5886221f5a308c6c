"""The database's JSON codec answers as the json module does, for every document (orjson reads
most of them, faster; json the rest)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from service.db import json_codec

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()  # beyond 64 bits too: orjson alone would read those as floats
    | st.floats(allow_nan=False, allow_infinity=False)  # JSON has no infinity
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(values)
def test_it_reads_what_json_reads(value: Any) -> None:
    text = json.dumps(value)
    assert json_codec.loads(text) == json.loads(text)
    assert json_codec.loads(json_codec.dumps(value)) == json.loads(text)


@pytest.mark.parametrize(
    "text",
    [
        "123456789012345678901234567890",
        "-9223372036854775809",
        "18446744073709551616",
        '{"id": 12345678901234567890123, "n": 1}',
        '"\\ud800"',
        "1e400",
        "[1.5, -0, 1E5]",
    ],
)
def test_where_orjson_differs_json_decides(text: str) -> None:
    got, expected = json_codec.loads(text), json.loads(text)
    assert got == expected
    assert type(got) is type(expected)
    if isinstance(expected, dict):
        assert type(got["id"]) is int


def test_it_writes_what_orjson_refuses() -> None:
    assert json.loads(json_codec.dumps({"big": 2**70})) == {"big": 2**70}


def test_it_reads_a_number_beyond_double_as_json_does() -> None:
    assert math.isinf(json_codec.loads("1e400"))
