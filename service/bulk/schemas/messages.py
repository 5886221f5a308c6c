"""pydantic errors turned into error-report lines a person can act on."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from service.bulk.rows import RowError, reported
from service.bulk.schemas.fields import PATTERN_HINTS

Phrase = Callable[[dict[str, Any]], str]

_WHOLE = "must be a whole number"
_NUMBER = "must be a number like 12.50"
_DATETIME = "must be a date and time like 2024-05-01T10:00:00Z"


def _items(count: int) -> str:
    return "one item" if count == 1 else f"{count} items"


#: Phrases by pydantic error type; each completes "<column> ...".
_PHRASES: dict[str, str | Phrase] = {
    "missing": "is required",
    "string_type": "must be text",
    "string_too_short": lambda ctx: (
        "must not be empty"
        if ctx["min_length"] == 1
        else f"must be at least {ctx['min_length']} characters"
    ),
    "string_too_long": lambda ctx: f"must be at most {ctx['max_length']} characters",
    "string_pattern_mismatch": lambda ctx: PATTERN_HINTS.get(
        ctx["pattern"], "has an invalid format"
    ),
    "int_parsing": _WHOLE,
    "int_type": _WHOLE,
    "int_from_float": _WHOLE,
    "decimal_parsing": _NUMBER,
    "decimal_type": _NUMBER,
    "finite_number": "must be a finite number",
    "decimal_max_places": lambda ctx: f"must have at most {ctx['decimal_places']} decimal places",
    "decimal_max_digits": lambda ctx: f"must have at most {ctx['max_digits']} digits",
    "decimal_whole_digits": lambda ctx: (
        f"must have at most {ctx['whole_digits']} digits before the point"
    ),
    "greater_than_equal": lambda ctx: (
        "must not be negative" if ctx["ge"] == 0 else f"must be at least {ctx['ge']}"
    ),
    "greater_than": lambda ctx: f"must be greater than {ctx['gt']}",
    "less_than_equal": lambda ctx: f"must be at most {ctx['le']}",
    "enum": lambda ctx: f"must be one of {ctx['expected']}",
    "literal_error": lambda ctx: f"must be one of {ctx['expected']}",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "datetime_parsing": _DATETIME,
    "datetime_from_date_parsing": _DATETIME,
    "datetime_type": _DATETIME,
    "timezone_aware": "must include a time zone, like 2024-05-01T10:00:00Z or +02:00",
    "dict_type": "must be a JSON object",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "list_type": "must be a JSON array",
    "too_short": lambda ctx: f"must have at least {_items(ctx['min_length'])}",
    "too_long": lambda ctx: f"must have at most {_items(ctx['max_length'])}",
}

#: Raised by our own validators with a complete sentence and a "column" in their context.
ROW_RULE = "row_rule"


def explain(error: ValidationError, raw: Mapping[str, Any], row: int) -> tuple[RowError, ...]:
    """One report line per problem pydantic found in the row."""
    return tuple(_line(detail, raw, row) for detail in error.errors(include_url=False))


def _line(detail: ErrorDetails, raw: Mapping[str, Any], row: int) -> RowError:
    loc = detail["loc"]
    ctx = detail.get("ctx") or {}
    if not loc:
        column = ctx.get("column")
        return RowError(row, column, reported(raw.get(column)) if column else None, detail["msg"])
    column = str(loc[0])
    value = raw.get(column) if len(loc) == 1 else detail["input"]
    message = f"{path(loc)} {phrase(detail)}"
    return RowError(row, column, None if detail["type"] == "missing" else reported(value), message)


def phrase(detail: ErrorDetails) -> str:
    kind = detail["type"]
    if detail["input"] is None and kind.endswith("_type"):
        return "is required"
    text = _PHRASES.get(kind)
    if text is None:
        return detail["msg"]
    return text if isinstance(text, str) else text(detail.get("ctx") or {})


def path(loc: tuple[int | str, ...]) -> str:
    """A location for people: lines[2].quantity (items counted from 1)."""
    text = str(loc[0])
    for part in loc[1:]:
        text += f"[{part + 1}]" if isinstance(part, int) else f".{part}"
    return text
