"""Bounded input types: every integer, date, string and JSON value the API accepts has limits.

FastAPI validates a JSON body in pydantic's Python mode, after json.loads, where lax mode would
take "3" or true for 3 and 0 for 1970-01-01; so body integers are strict (JSON numbers without
a fraction: 3 or 3.0, as JSON Schema's integer, never "3" or true) and dates are ISO 8601
text only. Query strings are text, so query integers parse it (lax) while dates still must be
ISO 8601. Every model of the API takes its types from here.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    StrictInt,
    WithJsonSchema,
)
from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

from service import config
from service.config import Settings

#: The counts of a task are INTEGER columns (PostgreSQL: 32 bits).
INT32_MAX = 2**31 - 1
#: The largest integer every JSON parser reads exactly (an IEEE double): byte sizes stop here.
SAFE_INTEGER_MAX = 2**53 - 1


def _integral(value: object) -> object:
    """A JSON number with no fraction is an integer, however it is written (3, 3.0, 3e0): JSON
    Schema's `integer`, which the OpenAPI document promises. json.loads makes the latter two a
    float, which strict validation would refuse; "3" and true stay refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


#: A JSON number with no fraction (before the bounds: after them, they would not be documented).
Integral = BeforeValidator(_integral)

#: Items of a task (total, processed, succeeded, failed).
Count = Annotated[StrictInt, Field(ge=0, le=INT32_MAX), Integral]
Percent = Annotated[StrictInt, Field(ge=0, le=100), Integral]
Retries = Annotated[StrictInt, Field(ge=0, le=20), Integral]
ByteSize = Annotated[StrictInt, Field(ge=0, le=SAFE_INTEGER_MAX), Integral]

#: Query integers (text in the URL, parsed).
PageNumber = Annotated[int, Field(ge=1, le=100_000)]
Offset = Annotated[int, Field(ge=0, le=10_000_000)]

NAME = r"^[a-z][a-z0-9_.-]{0,63}$"
#: A file's name as people see it (the storage key is derived from it, sanitised): any text
#: but control characters, which would forge log lines and headers.
FileName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=255,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="The file's name, without control characters",
    ),
]

#: A media type as in a Content-Type header, parameters allowed ("text/csv; charset=utf-8").
ContentType = Annotated[
    str,
    Field(
        max_length=255,
        # RFC 6838 names; parameters in printable ASCII (the type becomes a header value)
        pattern=r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+( *;[ -~]{1,200})?$",
        description="The file's media type; the upload must send it as its Content-Type",
    ),
]
#: A SHA-256 the client announces: the uploaded bytes must hash to it (any case accepted).
Sha256 = Annotated[
    str,
    Field(
        pattern=r"^[0-9a-fA-F]{64}$",
        max_length=64,
        description="SHA-256 of the file's bytes, 64 hex digits; other bytes are refused",
    ),
]
#: A name such as a task type or an entity type.
Name = Annotated[str, Field(pattern=NAME, max_length=64)]

#: A title people give a task, template or schedule: any text but control characters.
Title = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
#: Free text describing it; line breaks and tabs allowed, other control characters not.
Description = Annotated[
    str, Field(max_length=2000, pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$")
]
#: A label to find things by: letters, digits and `_ . : / -`, up to 64.
Tag = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}$", max_length=64)]
#: At most 20 tags; a tag given twice is refused (see unique_tags).
Tags = Annotated[list[Tag], Field(max_length=20, json_schema_extra={"uniqueItems": True})]


def unique_tags(tags: list[str]) -> list[str]:
    """Tags are a set the caller names in order: the same tag twice is a mistake to report."""
    if len(set(tags)) != len(tags):
        raise ValueError("each tag at most once")
    return tags


#: Instants the API takes: no task runs before the Unix epoch, and a year of headroom below
#: datetime's last one leaves room for leases, retries and retention to be added.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)
_ISO_INSTANT = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}([.,]\d{1,9})?)?([Zz]|[+-]\d{2}(:?\d{2})?)"
)
_INSTANT_TEXT = 40
_INSTANT_RULE = "an ISO 8601 date and time with a zone, e.g. 2026-05-01T09:00:00Z"


def _iso_text(value: object) -> object:
    if (
        not isinstance(value, str)
        or len(value) > _INSTANT_TEXT
        or not _ISO_INSTANT.fullmatch(value)
    ):
        raise PydanticCustomError("instant_format", f"must be {_INSTANT_RULE}")
    return value


#: The years an instant may be written in (its own offset's year, so that a pattern can state
#: it): up to 14 hours from the epoch on one side, and a year of headroom on the other.
FIRST_YEAR, LAST_YEAR = EARLIEST.year, LATEST.year - 1
_YEARS = r"^(19[7-9][0-9]|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-"


def in_range(moment: datetime) -> datetime:
    """Refuse an instant not written in the years FIRST_YEAR to LAST_YEAR (none of them
    overflows in UTC, whatever its offset)."""
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise PydanticCustomError(
            "instant_range", f"must be in the years {FIRST_YEAR} to {LAST_YEAR}"
        )
    return moment


#: A point in time: ISO 8601 text with a zone, in the years 1970 to 9998.
Instant = Annotated[
    AwareDatetime,
    BeforeValidator(_iso_text),
    AfterValidator(in_range),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "maxLength": _INSTANT_TEXT,
            "pattern": _YEARS,
            "description": f"{_INSTANT_RULE}; in the years {FIRST_YEAR} to {LAST_YEAR}",
        }
    ),
]


@dataclass(frozen=True, slots=True)
class InputLimits:
    """The request-size settings of the app serving a request."""

    max_body_bytes: int = config.DEFAULT_MAX_BODY_BYTES
    params_max_bytes: int = config.DEFAULT_PARAMS_MAX_BYTES
    params_max_depth: int = config.DEFAULT_PARAMS_MAX_DEPTH

    @classmethod
    def from_settings(cls, settings: Settings) -> InputLimits:
        return cls(settings.max_body_bytes, settings.params_max_bytes, settings.params_max_depth)


_DEFAULT_LIMITS = InputLimits()
#: Set per request by service.api.json_body.BoundedRoute. FastAPI validates a body without a
#: pydantic validation context, so validators that need a setting find it here.
LIMITS: ContextVar[InputLimits] = ContextVar("input_limits", default=_DEFAULT_LIMITS)

Loc = tuple[str | int, ...]
_UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")


def _nodes(value: Any) -> Iterator[tuple[Loc, int, Any]]:
    """Every value inside `value`, dict keys included, with its location and nesting depth (a
    container counts one level), walked without recursion: nothing here may overflow the stack."""
    stack: list[tuple[Loc, int, Any]] = [((), 0, value)]
    while stack:
        loc, depth, item = stack.pop()
        if isinstance(item, dict):
            depth += 1
            for key, child in item.items():
                stack.append(((*loc, key), depth, key))
                stack.append(((*loc, key), depth, child))
        elif isinstance(item, list):
            depth += 1
            stack.extend(((*loc, i), depth, child) for i, child in enumerate(item))
        yield loc, depth, item


def _unstorable(item: Any) -> PydanticCustomError | None:
    """PostgreSQL stores no NUL (text or JSONB), UTF-8 has no lone surrogates, JSON no NaN."""
    if isinstance(item, str) and (bad := _UNSTORABLE_TEXT.search(item)):
        if bad.group() == "\x00":
            return PydanticCustomError("string_nul", "must not contain NUL characters")
        return PydanticCustomError(
            "string_surrogate", "must not contain lone surrogates (text is UTF-8)"
        )
    if isinstance(item, float) and not math.isfinite(item):
        return PydanticCustomError("finite_number", "must be a finite number")
    return None


def error(loc: Loc, kind: str, message: str, value: Any) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError(kind, message), loc=loc, input=value)


def fail(errors: Iterable[InitErrorDetails]) -> None:
    """Raise these errors, if any, each at its own location. Raised inside a validator, their
    locations are taken as relative to the value validated (pydantic-core prefixes its own)."""
    details = list(errors)[:10]
    if details:
        raise ValidationError.from_exception_data("input", details)


def check_storable(value: Any, *, max_depth: int | None = None) -> None:
    """Refuse what no database or JSON answer can carry, naming where it is."""
    errors: list[InitErrorDetails] = []
    deepest = 0
    for loc, depth, item in _nodes(value):
        deepest = max(deepest, depth)
        if (problem := _unstorable(item)) is not None:
            errors.append(InitErrorDetails(type=problem, loc=loc, input=item))
    if max_depth is not None and deepest > max_depth:
        message = f"nests {deepest} levels deep; at most {max_depth} are allowed"
        errors.insert(0, error((), "json_depth", message, {}))
    fail(errors)


def _within_limits(params: dict[str, Any]) -> dict[str, Any]:
    """The size first (json.dumps is quick, and the body's depth is bounded already), then a
    walk of what is left: depth and unstorable values."""
    limits = LIMITS.get()
    text = json.dumps(params, ensure_ascii=False, separators=(",", ":"))
    size = len(text.encode(errors="surrogatepass"))  # lone surrogates are refused below
    if size > limits.params_max_bytes:
        raise PydanticCustomError(
            "json_size", f"is {size} bytes as JSON; at most {limits.params_max_bytes} are allowed"
        )
    check_storable(params, max_depth=limits.params_max_depth)
    return params


#: A task's params: a JSON object within the params size and depth settings.
Params = Annotated[
    dict[str, Any],
    AfterValidator(_within_limits),
    Field(description="Options of the task type; a JSON object (see OPS_PARAMS_MAX_BYTES)"),
]


#: Request fields that announce a file's size in bytes.
FILE_SIZE_FIELDS = ("size", "fileSize")


def document_file_limit(openapi: dict[str, Any], max_bytes: int) -> None:
    """State OPS_FILES_MAX_BYTES in the OpenAPI document as the maximum of every file size a
    request body announces (a larger one is a 413, which those operations document)."""
    components = openapi.get("components", {}).get("schemas", {})
    for item in openapi["paths"].values():
        for operation in item.values():
            for media in operation.get("requestBody", {}).get("content", {}).values():
                schema = media.get("schema", {})
                if "$ref" in schema:
                    schema = components[schema["$ref"].rsplit("/", 1)[1]]
                for name in FILE_SIZE_FIELDS:
                    field = schema.get("properties", {}).get(name, {})
                    for option in [field, *field.get("anyOf", [])]:
                        if option.get("type") == "integer":
                            option["maximum"] = max_bytes
