"""Field types the entity models share, and the base model of every record.

Checks run inside pydantic-core where possible (patterns, bounds), because a Python
callback per field per row is what makes validation slow. A pattern is tested on the
stripped input before any lower/upper-casing, hence the case-insensitive patterns.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
)
from pydantic_core import PydanticCustomError, from_json

from service.bulk.schemas import currencies

CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/-]*$"
ORDER_NUMBER_PATTERN = r"^[A-Za-z0-9#][A-Za-z0-9._/#-]*$"
EMAIL_PATTERN = (
    r"(?i)^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$"
)
PHONE_PATTERN = r"^\+[1-9][0-9]{6,14}$"
COUNTRY_PATTERN = r"(?i)^[a-z]{2}$"

#: What a failed pattern means, in words; the error translator looks messages up by pattern.
PATTERN_HINTS = {
    CODE_PATTERN: "may hold only letters, digits and . _ / - and must start with a letter or digit",
    ORDER_NUMBER_PATTERN: "may hold only letters, digits and . _ / - # and no spaces",
    EMAIL_PATTERN: "must be an email address like name@example.com",
    PHONE_PATTERN: "must be an international number: + and the country code, 7 to 15 digits",
    COUNTRY_PATTERN: "must be a two-letter ISO 3166 country code such as DE or US",
    currencies.PATTERN: "must be an ISO 4217 currency code such as EUR or USD",
}

_CENT = Decimal("0.01")
_ZERO = Decimal("0.00")
_LIMIT = Decimal(10**12)
_LIMIT_CTX = {"limit": str(_LIMIT)}
_PHONE_SEPARATORS = str.maketrans("", "", " -.()/\u00a0")


class Record(BaseModel):
    """Base of the entity models: text is stripped, numbers are accepted where text is expected."""

    model_config = ConfigDict(
        str_strip_whitespace=True, coerce_numbers_to_str=True, extra="ignore", frozen=True
    )


def parse_json(value: Any) -> Any:
    """A JSON column: text in CSV and XLSX, already parsed in JSON Lines."""
    if not isinstance(value, str):
        return value
    try:
        return from_json(value, allow_inf_nan=False)
    except ValueError as error:
        raise PydanticCustomError(
            "json_invalid", "is not valid JSON ({error})", {"error": str(error)}
        ) from None


def _money(value: Any) -> Decimal:
    """An amount >= 0 with at most 2 decimals, as a 2-place Decimal ("12.5" -> 12.50).

    Hand-rolled: pydantic-core's Decimal path (parse, digit and place checks, then a quantize
    in an after-validator) costs about three times as much, a third of a product row's
    validation (bench/bench_bulk_parse.py). The common case is a few C calls; every error
    is sorted out on the slow path, with messages as specific as pydantic's.
    """
    try:
        amount = Decimal(value) if value.__class__ is str else _decimal(value)
        cents = amount.quantize(_CENT)
    except InvalidOperation:
        raise _money_error(value) from None
    if cents != amount or cents <= 0 or cents >= _LIMIT:
        return _edge_amount(amount, cents)
    return cents


def _decimal(value: Any) -> Decimal:
    if isinstance(value, float):
        return Decimal(repr(value))  # 0.1 is "0.1", not its binary expansion
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return Decimal(value)
    raise PydanticCustomError("money_type", "must be an amount like 12.50")


def _edge_amount(amount: Decimal, cents: Decimal) -> Decimal:
    if not amount.is_finite():
        raise PydanticCustomError("money_parsing", "must be an amount like 12.50")
    if cents != amount:
        raise PydanticCustomError("money_places", "must have at most 2 decimal places")
    if cents < 0:
        raise PydanticCustomError("money_negative", "must not be negative")
    if cents >= _LIMIT:
        raise PydanticCustomError("money_size", "must be less than {limit}", _LIMIT_CTX)
    return _ZERO  # "-0" is 0.00, not -0.00


def _money_error(value: Any) -> PydanticCustomError:
    try:
        amount = Decimal(value) if isinstance(value, str) else _decimal(value)
    except InvalidOperation:
        return PydanticCustomError("money_parsing", "must be an amount like 12.50")
    if amount.is_finite():
        return PydanticCustomError("money_size", "must be less than {limit}", _LIMIT_CTX)
    return PydanticCustomError("money_parsing", "must be an amount like 12.50")


def _json_object(value: Any) -> dict[str, Any]:
    """A JSON object column; parsed here rather than by pydantic-core, which would copy it."""
    parsed = parse_json(value)
    if type(parsed) is not dict:
        raise PydanticCustomError("dict_type", "must be a JSON object")
    return parsed


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _phone(value: Any) -> Any:
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        return value
    digits = value.translate(_PHONE_SEPARATORS)
    return "+" + digits[2:] if digits.startswith("00") else digits


def lower_text(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


Code = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=CODE_PATTERN)]
OrderNumber = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=ORDER_NUMBER_PATTERN)
]
Name = Annotated[str, StringConstraints(min_length=1, max_length=255)]
ShortText = Annotated[str, StringConstraints(max_length=255)]
LongText = Annotated[str, StringConstraints(max_length=10_000)]
# A before-validator, not a plain one: pydantic then serialises it as the Decimal it is
# (with PlainValidator, model_dump(mode="json") warns that it expected a decimal).
Money = Annotated[Decimal, BeforeValidator(_money)]
Count = Annotated[int, Field(ge=0, le=2**53)]
Currency = Annotated[str, StringConstraints(to_upper=True, pattern=currencies.PATTERN)]
Country = Annotated[str, StringConstraints(to_upper=True, pattern=COUNTRY_PATTERN)]
Email = Annotated[str, StringConstraints(max_length=254, to_lower=True, pattern=EMAIL_PATTERN)]
Phone = Annotated[str, BeforeValidator(_phone), StringConstraints(pattern=PHONE_PATTERN)]
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_utc)]
JsonObject = Annotated[dict[str, Any], PlainValidator(_json_object)]
