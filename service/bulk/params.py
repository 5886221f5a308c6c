"""Parameters of import and export tasks: checked when the task is created (a 422 that names
the field) and again by the handler, so a task never fails late on a typo in its params."""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import ConfigDict, Field, ValidationError, model_validator

from service.bulk import sniffing
from service.bulk.schemas import SCHEMAS
from service.domain.errors import InvalidInput, PermanentFailure
from service.usecases.views import CamelModel

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
P = TypeVar("P", bound="SinkParams")


class SinkParams(CamelModel):
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

    model_config = ConfigDict(extra="forbid")

    format: Literal["csv", "jsonl", "xlsx"] | None = None
    delimiter: Literal[",", ";", "\t", "|"] | None = None
    mode: Literal["insert", "upsert"] = "insert"
    skip_duplicates: bool = False
    validate_only: bool = False
    batch_size: int = Field(2000, ge=1, le=50_000)


class ExportParams(SinkParams):
    model_config = ConfigDict(extra="forbid")

    format: Literal["csv", "jsonl", "xlsx"] = "csv"
    gzip: bool = False
    columns: list[str] | None = Field(None, max_length=200)
    #: equality filters on record fields, e.g. {"category": "shoes"}
    filters: dict[str, str | int | bool] = Field(default_factory=dict, max_length=20)
    key_prefix: str | None = Field(None, max_length=255)
    batch_size: int = Field(5000, ge=1, le=50_000)
    file_name: str | None = Field(None, max_length=200)


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


def check_export(entity_type: str | None, params: dict[str, Any]) -> None:
    """An export names an entity, valid params and columns the entity has."""
    schema = SCHEMAS[_entity(entity_type)]
    checked = _checked(ExportParams, params)
    try:
        schema.select(checked.columns)
    except InvalidInput as error:
        raise InvalidInput(error.detail, field="params.columns") from error
