"""Request and answer models of /schedules (camelCase on the wire, snake_case accepted)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import Field, StrictInt, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from service.api import fields
from service.api.schemas import InputModel
from service.catalog.notifications import NotificationSettings
from service.domain import schedules as rules
from service.domain.schedules import CatchUp, OverlapPolicy
from service.domain.tasks import Priority, Queue
from service.usecases.schedule_views import SchedulePublic
from service.wire import CamelModel

CatchUpLimit = Annotated[StrictInt, Field(ge=1, le=rules.MAX_CATCH_UP), fields.Integral]
Version = Annotated[StrictInt, Field(ge=1, le=fields.INT32_MAX), fields.Integral]
Cron = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        description=(
            "5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first"
            " as in Dapr's cron, e.g. `0 2 * * *` or `*/30 * * * * *`"
        ),
    ),
]
TimeZone = Annotated[
    str, Field(min_length=1, max_length=64, description="An IANA zone, e.g. Europe/Berlin")
]
PriorityLabel = Literal["low", "normal", "high", "urgent"]
QueueName = Literal["default", "urgent", "bulk"]
OverlapName = Literal["skip", "queue-one", "allow"]
CatchUpName = Literal["none", "latest", "all"]


class _ScheduleFields(InputModel):
    """The fields both a create and a change take (a change: each optional)."""

    description: fields.Description | None = None
    template_id: str | None = Field(
        None, max_length=64, description="Make each task from this template"
    )
    template_version: Version | None = Field(
        None, description="The template's version (default: its latest)"
    )
    task_type: fields.Name | None = Field(None, description="Or make each task of this type")
    entity_type: fields.Name | None = None
    priority: PriorityLabel | None = None
    queue: QueueName | None = None
    max_retries: fields.Retries | None = None
    notification_settings: NotificationSettings | None = None
    start_at: fields.Instant | None = Field(None, description="No fire time before this")
    end_at: fields.Instant | None = Field(None, description="No fire time after this")

    @field_validator("tags", check_fields=False)
    @classmethod
    def _unique_tags(cls, tags: list[str] | None) -> list[str] | None:
        return None if tags is None else fields.unique_tags(tags)

    def spec_values(self) -> dict[str, Any]:
        """The ScheduleSpec fields this body sets (a change: only those sent)."""
        values: dict[str, Any] = {}
        for name in self.model_fields_set:
            value = getattr(self, name)
            if name == "priority":
                value = None if value is None else Priority.parse(value)
            elif name == "queue":
                value = None if value is None else Queue(value)
            elif name == "tags":
                value = tuple(value)
            elif name == "notification_settings":
                value = None if value is None else value.stored()
            elif name == "overlap_policy":
                value = OverlapPolicy(value)
            elif name == "catch_up":
                value = CatchUp(value)
            values[name] = value
        return values


class ScheduleCreate(_ScheduleFields):
    """A recurring schedule: a cron in a time zone, and the task each fire time makes (from a
    template, or a taskType with its params)."""

    name: fields.Title
    cron: Cron
    time_zone: TimeZone = "UTC"
    params: fields.Params = Field(
        default_factory=dict, description="The task's params (with a template: its overrides)"
    )
    tags: fields.Tags = Field(default_factory=list)
    overlap_policy: OverlapName = Field(
        "skip", description="While the last task runs: skip, queue-one, or allow"
    )
    catch_up: CatchUpName = Field(
        "none", description="Fire times missed during downtime: none, latest, or all"
    )
    catch_up_limit: CatchUpLimit = Field(10, description="catchUp=all makes at most this many")

    def spec_values(self) -> dict[str, Any]:
        values = super().spec_values()
        for name in ("time_zone", "params", "tags", "overlap_policy", "catch_up"):
            if name not in values:  # defaults are not in model_fields_set
                values[name] = getattr(self, name)
        values["tags"] = tuple(values["tags"])
        values["overlap_policy"] = OverlapPolicy(values["overlap_policy"])
        values["catch_up"] = CatchUp(values["catch_up"])
        values["catch_up_limit"] = self.catch_up_limit
        return values


#: Fields a change may not set to null.
_REQUIRED = (
    "name",
    "cron",
    "time_zone",
    "params",
    "tags",
    "overlap_policy",
    "catch_up",
    "catch_up_limit",
)


class ScheduleChange(_ScheduleFields):
    """PATCH: the fields sent replace the schedule's; null clears an optional one. The result
    is checked as a create would be."""

    # Optional but never null (SkipJsonSchema: the document says so; _not_null refuses it)
    name: fields.Title | SkipJsonSchema[None] = None
    cron: Cron | SkipJsonSchema[None] = None
    time_zone: TimeZone | SkipJsonSchema[None] = None
    params: fields.Params | SkipJsonSchema[None] = None
    tags: fields.Tags | SkipJsonSchema[None] = None
    overlap_policy: OverlapName | SkipJsonSchema[None] = None
    catch_up: CatchUpName | SkipJsonSchema[None] = None
    catch_up_limit: CatchUpLimit | SkipJsonSchema[None] = None

    @model_validator(mode="after")
    def _not_null(self) -> Self:
        known = type(self).model_fields
        fields.fail(
            fields.error((known[n].alias or n,), "not_null", "may not be null", None)
            for n in _REQUIRED
            if n in self.model_fields_set and getattr(self, n) is None
        )
        return self


class ScheduleListQuery(InputModel):
    page: fields.PageNumber = 1
    page_size: int = Field(20, ge=1, le=100)
    status: Literal["active", "paused"] | None = None
    task_type: fields.Name | None = None
    owner: str | None = Field(None, max_length=128, description="Admins: one owner's only")


class SchedulePage(CamelModel):
    items: list[SchedulePublic]
    total: int
    page: int
    page_size: int
