"""Parameters of import and export tasks: checked when the task is created (a 422 that names
the field) and again by the handler, so a task never fails late on a typo in its params."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal, TypeVar

from pydantic import Field, PlainValidator, ValidationError, model_validator
from pydantic_core import to_json

from service.bulk import sniffing
from service.bulk.columns import Column, Kind
from service.bulk.schemas import SCHEMAS
from service.bulk.schemas.base import Schema
from service.domain.errors import InvalidInput, PermanentFailure
from service.wire import StrictModel

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
MAX_ERRORS_DEFAULT = 1000
MAX_ERRORS_LIMIT = 100_000
P = TypeVar("P", bound="SinkParams")


class SinkParams(StrictModel):
    """Where rows go (import) or come from (export): the local store or the owning service."""

    sink: Literal["local", "service"] = "local"
    target_service: str | None = Field(None, pattern=NAME)
    method: str | None = Field(None, pattern=r"^[A-Za-z0-9_./-]{1,200}$")

    @model_validator(mode="after")
    def _service_needs_target(self) -> SinkParams:
        if self.sink == "service" and not (self.target_service and self.method):
            raise ValueError("sink 'service' needs targetService and method")
        return self


class ImportParams(SinkParams):
    """An unknown key is refused: a misspelt validateOnly must not run a real import."""

    format: Literal["csv", "jsonl", "xlsx"] | None = None
    delimiter: Literal[",", ";", "\t", "|"] | None = None
    mode: Literal["insert", "upsert"] = "insert"
    skip_duplicates: bool = False
    validate_only: bool = False
    batch_size: int = Field(2000, ge=1, le=50_000)
    #: rejected rows the import takes; one more stops it as failed. A count, not a share of
    #: the rows read: a share is meaningless early in a file (one bad row of the first two is
    #: half), and the count is what bounds the error table and the report. Strict: 1e3,
    #: "1000" and true are refused rather than read as a number.
    max_errors: int = Field(MAX_ERRORS_DEFAULT, ge=0, le=MAX_ERRORS_LIMIT, strict=True)


#: A filter's value as the request gives it.
Scalar = str | int | float | bool


def _scalar(value: Any) -> Scalar:
    if isinstance(value, str | int | float):  # bool is an int
        return value
    raise ValueError("must be text, a number, true or false")


class ExportParams(SinkParams):
    format: Literal["csv", "jsonl", "xlsx"] = "csv"
    gzip: bool = False
    columns: list[str] | None = Field(None, max_length=200)
    #: equality filters on record fields, e.g. {"category": "shoes"}; checked against the
    #: entity's columns by `check_export`
    filters: dict[str, Annotated[Scalar, PlainValidator(_scalar)]] = Field(
        default_factory=dict, max_length=20
    )
    key_prefix: str | None = Field(None, max_length=255)
    batch_size: int = Field(5000, ge=1, le=50_000)
    file_name: str | None = Field(None, max_length=200)

    @model_validator(mode="after")
    def _prefix_is_local(self) -> ExportParams:
        if self.key_prefix and self.sink != "local":
            raise ValueError("keyPrefix selects records of the local store; it needs sink 'local'")
        return self


@dataclass(frozen=True, slots=True)
class Filter:
    """Records whose `column` equals `value` as their JSON holds it: a decimal as its text
    with the column's places ("12.50" for 12.5), so equal amounts match however written."""

    column: Column
    value: str | int | bool


@dataclass(frozen=True, slots=True)
class Export:
    """An export's params checked against its entity: the columns to write, the filters."""

    params: ExportParams
    columns: tuple[Column, ...]
    filters: tuple[Filter, ...]


#: What a filter on a column of each kind takes, in words.
_WANTS = {
    Kind.TEXT: "is a text column: give its value as a string",
    Kind.INTEGER: "is a whole-number column: give a number without decimals",
    Kind.BOOLEAN: "is a true/false column: give true or false",
    Kind.DECIMAL: "is a decimal column: give a number (or its text) with at most {scale} "
    "decimal places",
}
_UNFILTERED = (
    "cannot be filtered on: filters compare text, whole-number, decimal and true/false columns"
)


def _problems(error: ValidationError) -> list[tuple[str, str]]:
    return [
        ("params." + ".".join(str(p) for p in e["loc"]) if e["loc"] else "params", e["msg"])
        for e in error.errors()
    ]


def parse(model: type[P], params: dict[str, Any]) -> P:
    """The task's params as `model`, or a permanent failure naming each bad field (a task
    created before the creation-time check, or by a service writing the row itself)."""
    try:
        return model.model_validate(params)
    except ValidationError as error:
        problems = "; ".join(f"{field}: {reason}" for field, reason in _problems(error))
        raise PermanentFailure(f"invalid params: {problems}") from error


def _checked(model: type[P], params: dict[str, Any]) -> P:
    try:
        return model.model_validate(params)
    except ValidationError as error:
        (field, reason), *_ = _problems(error)
        raise InvalidInput(reason, field=field) from error


def _entity(entity_type: str | None) -> str:
    if entity_type not in SCHEMAS:
        choices = ", ".join(sorted(SCHEMAS))
        raise InvalidInput(f"must be one of {choices}, got {entity_type!r}", field="entityType")
    return entity_type


def check_import(
    entity_type: str | None, params: dict[str, Any], *, file_name: str | None, has_input: bool
) -> None:
    """An import names an entity, valid params, and a file this service reads."""
    _entity(entity_type)
    checked = _checked(ImportParams, params)
    if file_name is None and not has_input:
        raise InvalidInput(
            "an import needs a fileName (to upload the file) or an inputFileId", field="fileName"
        )
    if file_name is not None and checked.format is None:
        try:
            sniffing.format_of_name(file_name)
        except ValueError as error:
            raise InvalidInput(str(error), field="fileName") from error


def check_export(entity_type: str | None, params: dict[str, Any]) -> Export:
    """An export names an entity, valid params, and columns and filters the entity has."""
    schema = SCHEMAS[_entity(entity_type)]
    return _export(schema, _checked(ExportParams, params))


def parse_export(schema: Schema[Any], params: dict[str, Any]) -> Export:
    """`check_export` for the handler: a permanent failure naming the bad field."""
    checked = parse(ExportParams, params)
    try:
        return _export(schema, checked)
    except InvalidInput as error:
        raise PermanentFailure(f"invalid params: {error.field}: {error.detail}") from error


def _export(schema: Schema[Any], params: ExportParams) -> Export:
    try:
        columns = schema.select(params.columns)
    except InvalidInput as error:
        raise InvalidInput(error.detail, field="params.columns") from error
    filters = tuple(_filter(schema, name, value) for name, value in params.filters.items())
    return Export(params, columns, filters)


def _filter(schema: Schema[Any], name: str, value: Scalar) -> Filter:
    """A filter on a column the entity has, with a value that column can hold; a value of
    another type is refused rather than left to match nothing."""
    field = f"params.filters.{name}"
    try:
        (column,) = schema.select([name])
    except InvalidInput as error:
        raise InvalidInput(error.detail, field=field) from error
    kind = column.kind
    if (
        (kind is Kind.TEXT and isinstance(value, str))
        or (kind is Kind.INTEGER and type(value) is int)
        or (kind is Kind.BOOLEAN and isinstance(value, bool))
    ):
        return Filter(column, value)
    if kind is Kind.DECIMAL:
        text = _decimal_text(value, column.scale)
        if text is not None:
            return Filter(column, text)
    wants = _WANTS.get(kind, _UNFILTERED).format(scale=column.scale)
    raise InvalidInput(f"{name} {wants}; got {to_json(value).decode()}", field=field)


def _decimal_text(value: Scalar, scale: int) -> str | None:
    """The amount as the store writes it ("12.50" at scale 2); None if it is not a number
    with at most `scale` places."""
    if isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value) if isinstance(value, float) else value)
        places = number.quantize(Decimal(1).scaleb(-scale))
    except InvalidOperation:  # not a number, or too large for the column's places
        return None
    if not number.is_finite() or places != number:
        return None
    return str(places + 0)  # + 0: -0.00 is 0.00
