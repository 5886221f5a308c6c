"""/dead-letters: events the broker gave up delivering (admins), and their replay."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query
from pydantic import Field, StrictInt, ValidationInfo, field_validator

from service.api import fields
from service.api.deps import CallerDep, UnitDep
from service.api.json_body import BoundedRoute
from service.api.schemas import InputModel
from service.clock import utcnow
from service.db.repositories.dead_letters import DeadLetterFilters
from service.usecases import dead_letters
from service.usecases.dead_letters import MAX_REPLAY, DeadLetterView
from service.usecases.views import CamelModel
from service.web.problems import CALLER_RESPONSES, responses
from service.wire import Integral

router = APIRouter(
    prefix="/dead-letters",
    tags=["dead letters"],
    responses=CALLER_RESPONSES,
    route_class=BoundedRoute,
)

#: a topic or CloudEvent type as it landed: printable text
EventName = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]


class DeadLetterFilterFields(InputModel):
    """Which dead letters: every field given must match."""

    topic: EventName | None = Field(None, description="the topic it was dead-lettered on")
    event_type: EventName | None = Field(None, description="the CloudEvent type")
    task_id: UUID | None = None
    received_from: fields.Instant | None = Field(None, description="received at or after")
    received_to: fields.Instant | None = Field(None, description="received before")
    replayed: bool | None = Field(
        None, description="true: only those replayed already; false: only those never replayed"
    )

    @field_validator("received_to")
    @classmethod
    def _range(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("received_from")
        if value is not None and start is not None and value < start:
            raise ValueError("is before receivedFrom")
        return value

    def filters(self) -> DeadLetterFilters:
        return DeadLetterFilters(
            topic=self.topic,
            event_type=self.event_type,
            task_id=self.task_id,
            received_from=self.received_from,
            received_to=self.received_to,
            replayed=self.replayed,
        )


class DeadLetterQuery(DeadLetterFilterFields):
    limit: int = Field(100, ge=1, le=500)
    offset: fields.Offset = 0


@router.get("", response_model=list[DeadLetterView], responses=responses(403))
async def list_dead_letters(
    query: Annotated[DeadLetterQuery, Query()], uow: UnitDep, caller: CallerDep
) -> list[DeadLetterView]:
    """Newest first, filtered by topic, event type, task id and when received; admins and
    services only."""
    return await dead_letters.latest(
        uow, caller, limit=query.limit, offset=query.offset, filters=query.filters()
    )


@router.post(
    "/{dead_letter_id}/replay", response_model=DeadLetterView, responses=responses(403, 404, 409)
)
async def replay_dead_letter(
    dead_letter_id: Annotated[int, Path(ge=1, le=fields.SAFE_INTEGER_MAX)],
    uow: UnitDep,
    caller: CallerDep,
) -> DeadLetterView:
    """Re-publish the dead letter's event through the outbox (its type, subject and data, a
    new event id) and mark it replayed, recorded with the caller; admins only. 409 when its
    type is not one this service publishes."""
    return await dead_letters.replay_one(uow, caller, dead_letter_id, now=utcnow())


class ReplayRequest(InputModel):
    """Replay every dead letter the filter matches (an empty filter matches all)."""

    filter: DeadLetterFilterFields = Field(default_factory=DeadLetterFilterFields)
    limit: Annotated[StrictInt, Field(ge=1, le=MAX_REPLAY), Integral] = Field(
        100,
        description="the most to replay: more matching is refused whole (422)",
    )
    dry_run: bool = Field(False, strict=True, description="only count: change nothing")


class ReplayAnswer(CamelModel):
    matched: int = Field(description="dead letters the filter matches")
    applied: bool = Field(description="false for a dry run: nothing changed")
    replayed: int = Field(description="re-published through the outbox")
    skipped: int = Field(description="matched, but of a type this service does not publish")
    limit: int


@router.post(":replay", response_model=ReplayAnswer, responses=responses(403))
async def replay_dead_letters(body: ReplayRequest, uow: UnitDep, caller: CallerDep) -> ReplayAnswer:
    """Replay the dead letters `filter` matches, oldest first; admins only. `dryRun` counts
    them (show it before confirming); more than `limit` matching is refused (422: narrow the
    filter). Each is re-published through the outbox and marked replayed with the caller."""
    outcome = await dead_letters.replay_matching(
        uow,
        caller,
        body.filter.filters(),
        limit=body.limit,
        dry_run=body.dry_run,
        now=utcnow(),
    )
    return ReplayAnswer(
        matched=outcome.matched,
        applied=outcome.applied,
        replayed=outcome.replayed,
        skipped=outcome.skipped,
        limit=body.limit,
    )
