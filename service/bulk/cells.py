"""Cell text: rendering by column kind, and CSV formula-injection neutralisation.

A spreadsheet runs a cell that starts with = + - @ (and, in some, tab or CR) as a formula.
Writers prefix such text cells with a single quote, the OWASP advice: spreadsheets show the
text as typed and hide the quote. To keep round trips exact the rule is a bijection: a cell
that already starts with quotes followed by a trigger gets one more quote, and the CSV reader
takes exactly one quote off any cell of that shape (see `restore`). Numbers in numeric columns
(e.g. an adjustment of -5) are never touched: only text is neutralised.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, assert_never

from pydantic_core import to_json

from service.bulk.columns import Column, Kind

TRIGGERS = frozenset("=+-@\t\r")
#: First characters that may need neutralising; any other text cell is safe as it is.
RISKY = TRIGGERS | {"'"}
_NEUTRALISE = re.compile(r"'*[=+\-@\t\r]")
_RESTORE = re.compile(r"'+[=+\-@\t\r]")
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")

Render = Callable[[Any], str]
_QUANTIZE_DIGITS = 20  #: beyond this quantize() would exceed the default 28-digit context


def neutralise(text: str) -> str:
    """The cell text a spreadsheet will not run as a formula."""
    if text and (text[0] in TRIGGERS or (text[0] == "'" and _NEUTRALISE.match(text))):
        return "'" + text
    return text


def restore(text: str) -> str:
    """Undo `neutralise`: drop one leading quote from a quoted trigger cell."""
    if text[:1] == "'" and _RESTORE.match(text):
        return text[1:]
    return text


def iso(value: datetime | date) -> str:
    """ISO 8601; aware datetimes in UTC with a trailing Z."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        text = value.astimezone(UTC).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    return value.isoformat()


def json_text(value: Any) -> str:
    """Compact JSON (pydantic-core's encoder): decimals as strings ("12.50"), UTC as ...Z."""
    return to_json(value).decode()


def _text(value: Any) -> str:
    if value.__class__ is str:
        return value if value[:1] not in RISKY else neutralise(value)
    if value is None:
        return ""
    if isinstance(value, enum.Enum):
        value = value.value
    return neutralise(value if isinstance(value, str) else str(value))


def _numeric_text(value: str) -> str:
    return value if _NUMBER.fullmatch(value) else neutralise(value)


def _integer(value: Any) -> str:
    if value.__class__ is int:
        return str(value)
    if value is None:
        return ""
    if isinstance(value, str):
        return _numeric_text(value)
    return str(int(value))


def fixed_point(scale: int) -> Callable[[Decimal | float | int], str]:
    """Renders a number with exactly `scale` decimals, never in exponent form."""
    spec = f".{scale}f"
    exponent = Decimal(1).scaleb(-scale)

    def render(value: Decimal | float | int) -> str:
        if value.__class__ is Decimal and value.adjusted() < _QUANTIZE_DIGITS:
            return str(value.quantize(exponent))  # quicker than format()
        return format(value, spec)

    return render


def _decimal(scale: int) -> Render:
    fixed = fixed_point(scale)

    def render(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, str):
            return _numeric_text(value)
        return fixed(value)

    return render


def _boolean(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _text(value)


def _datetime(value: Any) -> str:
    if isinstance(value, datetime | date):
        return iso(value)
    return _text(value)


def _json(value: Any) -> str:
    if value.__class__ is dict:
        return json_text(value)  # "{…" is never a formula: nothing to neutralise
    if value is None:
        return ""
    if isinstance(value, str):
        return neutralise(value)
    return neutralise(json_text(value))


def text_renderer(column: Column) -> Render:
    """How a CSV writer turns a value of this column into cell text."""
    kind = column.kind
    if kind is Kind.TEXT:
        return _text
    if kind is Kind.INTEGER:
        return _integer
    if kind is Kind.DECIMAL:
        return _decimal(column.scale)
    if kind is Kind.BOOLEAN:
        return _boolean
    if kind is Kind.DATETIME:
        return _datetime
    if kind is Kind.JSON:
        return _json
    assert_never(kind)
