"""Answers every app gives: RFC 9457 problems and health."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ConfigDict, Field

from service.wire import CamelModel


class FieldError(CamelModel):
    field: str = Field(description="The field, e.g. params.mode, pageSize, body, x-user-id")
    reason: str


class Problem(CamelModel):
    """An RFC 9457 problem (application/problem+json); members beyond these name the resource."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[FieldError] | None = None


class Health(CamelModel):
    status: str
    service: str = "common-operations"
    version: str
    checks: dict[str, Any] = Field(default_factory=dict)
    time: datetime | None = None
