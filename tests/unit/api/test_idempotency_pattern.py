"""The Idempotency-Key pattern the OpenAPI document states is exactly what parse_key takes: a
client (or a fuzzer) that follows the document gets no 400, and one that does not gets one."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings, strategies as st

from service.api.idempotency import DOCUMENTED_MAX_LENGTH, MAX_LENGTH, PATTERN, parse_key
from service.domain.errors import MalformedRequest

DOCUMENTED = re.compile(PATTERN)
#: The characters the two forms treat differently, and some neither takes.
CHARS = st.sampled_from([" ", "!", '"', "#", "\\", "a", "~", "\t", "\x7f", "é", "\x00"])
NEAR_THE_LIMIT = st.integers(MAX_LENGTH - 3, MAX_LENGTH + 2)


def documented(value: str) -> bool:
    return len(value) <= DOCUMENTED_MAX_LENGTH and DOCUMENTED.fullmatch(value) is not None


def taken(value: str) -> bool:
    try:
        parse_key(value)
    except MalformedRequest:
        return False
    return True


values = (
    st.text(CHARS, max_size=10)
    | st.builds(lambda n, end: "k" * n + end, NEAR_THE_LIMIT, st.text(CHARS, max_size=2))
    | st.builds(lambda n: '"' + " " * n + 'k"', NEAR_THE_LIMIT)
    | st.builds(lambda n: '"' + '\\"' * n + '"', NEAR_THE_LIMIT)
    | st.builds(lambda n: '"' + "k" * n + '"', NEAR_THE_LIMIT)
)


@settings(max_examples=3000, database=None, derandomize=True)
@given(values)
def test_the_documented_pattern_is_what_parse_key_takes(value: str) -> None:
    value = value.strip(" \t")  # as every HTTP server hands a header's value over
    assert documented(value) == taken(value), value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("k" * MAX_LENGTH, True),
        ("k" * (MAX_LENGTH + 1), False),
        ('"' + "k" * MAX_LENGTH + '"', True),
        ('"' + "k" * (MAX_LENGTH + 1) + '"', False),
        ('"' + '\\"' * (MAX_LENGTH // 2) + '"', True),
        ('"' + '\\"' * (MAX_LENGTH // 2 + 1) + '"', False),  # 256 characters as written
        ('"   "', False),
        ('"a b"', True),
        ("a b", True),
        ('a"b', False),
    ],
)
def test_the_edges(value: str, expected: bool) -> None:
    assert documented(value) is expected is taken(value)
