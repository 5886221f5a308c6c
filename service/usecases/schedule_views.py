"""Read shapes of schedules: the API's answers and the `data` of schedule events."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import Field

from service.db.repositories.schedules import RunRecord
from service.domain.schedules import ScheduleRecord
from service.domain.tasks import Priority
from service.wire import CamelModel


class SchedulePublic(CamelModel):
    id: UUID
    name: str
    description: str | None = None
    owner: str
    cron: str
    time_zone: str
    template_id: str | None = None
    template_version: int | None = None
    task_type: str | None = None
    entity_type: str | None = None
    params: dict[str, Any]
    priority: str | None = None
    queue: str | None = None
    max_retries: int | None = None
    tags: list[str] = Field(default_factory=list)
    notification_settings: dict[str, Any] | None = None
    overlap_policy: str
    catch_up: str
    catch_up_limit: int
    start_at: datetime | None = None
    end_at: datetime | None = None
    status: str
    paused_reason: str | None = None
    next_fire_at: datetime | None = None
    queued_fire_at: datetime | None = None
    last_fire_at: datetime | None = None
    last_task_id: UUID | None = None
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, schedule: ScheduleRecord) -> SchedulePublic:
        data = {name: getattr(schedule, name) for name in _PUBLIC}
        data["priority"] = None if schedule.priority is None else Priority(schedule.priority).label
        data["overlap_policy"] = schedule.overlap_policy.value
        data["catch_up"] = schedule.catch_up.value
        data["status"] = schedule.status.value
        return cls.model_construct(**data)


_PUBLIC = tuple(SchedulePublic.model_fields)


class FireTime(CamelModel):
    """A fire time as an instant and as the schedule's local wall-clock time."""

    utc: datetime
    local: datetime


class RunView(CamelModel):
    fire_time: datetime
    outcome: str
    task_id: UUID | None
    task_status: str | None
    created_at: datetime

    @classmethod
    def of(cls, run: RunRecord) -> RunView:
        return cls(
            fire_time=run.fire_time,
            outcome=run.outcome.value,
            task_id=run.task_id,
            task_status=run.task_status,
            created_at=run.created_at,
        )


class ScheduleDetail(SchedulePublic):
    """One schedule with its next fire times and its last runs."""

    next_fire_times: list[FireTime] = Field(default_factory=list)
    last_runs: list[RunView] = Field(default_factory=list)


def snapshot(schedule: ScheduleRecord) -> dict[str, Any]:
    return SchedulePublic.of(schedule).model_dump(mode="json", by_alias=True)
