"""/analytics: counts, rates, durations and busy times of tasks over 7, 30 or 90 days."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import Field, field_validator

from service.api import fields
from service.api.deps import CallerDep, UnitDep
from service.api.json_body import BoundedRoute
from service.api.schemas import InputModel
from service.clock import utcnow
from service.domain.analytics import WINDOWS
from service.usecases import analytics
from service.usecases.analytics import AnalyticsReport
from service.web.problems import CALLER_RESPONSES

router = APIRouter(
    prefix="/analytics", tags=["analytics"], responses=CALLER_RESPONSES, route_class=BoundedRoute
)


class AnalyticsQuery(InputModel):
    days: int = Field(
        7,
        ge=min(WINDOWS),
        le=max(WINDOWS),
        description="the window: 7, 30 or 90 UTC days (today and the days before it)",
        json_schema_extra={"enum": list(WINDOWS)},
    )
    task_type: fields.Name | None = None
    entity_type: fields.Name | None = None
    queue: fields.Name | None = None

    @field_validator("days")
    @classmethod
    def _window(cls, value: int) -> int:
        if value not in WINDOWS:
            raise ValueError(f"must be one of {', '.join(map(str, WINDOWS))}")
        return value


@router.get("", response_model=AnalyticsReport)
async def get_analytics(
    query: Annotated[AnalyticsQuery, Query()], uow: UnitDep, caller: CallerDep
) -> AnalyticsReport:
    """Tasks created in the last `days` UTC days (today included): counts by status and type,
    success, failure and retry rates, p50/p95/p99 run time and queue wait, throughput per day,
    the busiest UTC hours and days of the week, the top failure messages. Admins see every
    task, users their own. Exact and current: a rollup plus the changes since it, live."""
    return await analytics.report(
        uow,
        caller,
        days=query.days,
        now=utcnow(),
        task_type=query.task_type,
        entity_type=query.entity_type,
        queue=query.queue,
    )
