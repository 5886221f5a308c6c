"""Parameters of import and export tasks, validated before any work starts."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from service.domain.errors import PermanentFailure
from service.usecases.views import CamelModel

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"


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
    format: Literal["csv", "jsonl", "xlsx"] | None = None
    delimiter: Literal[",", ";", "\t", "|"] | None = None
    mode: Literal["insert", "upsert"] = "insert"
    skip_duplicates: bool = False
    validate_only: bool = False
    batch_size: int = Field(2000, ge=1, le=50_000)


class ExportParams(SinkParams):
    format: Literal["csv", "jsonl", "xlsx"] = "csv"
    gzip: bool = False
    columns: list[str] | None = Field(None, max_length=200)
    #: equality filters on record fields, e.g. {"category": "shoes"}
    filters: dict[str, str | int | bool] = Field(default_factory=dict, max_length=20)
    key_prefix: str | None = Field(None, max_length=255)
    batch_size: int = Field(5000, ge=1, le=50_000)
    file_name: str | None = Field(None, max_length=200)


def parse(model: type[ImportParams] | type[ExportParams], params: dict[str, Any]) -> Any:
    """The task's params as `model`, or a permanent failure naming each bad field."""
    try:
        return model.model_validate(params)
    except ValidationError as error:
        problems = "; ".join(
            f"params.{'.'.join(str(p) for p in e['loc']) or '?'}: {e['msg']}"
            for e in error.errors()
        )
        raise PermanentFailure(f"invalid params: {problems}") from error
