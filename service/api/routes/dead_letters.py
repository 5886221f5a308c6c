"""/dead-letters: events the broker gave up delivering (admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from service.api import fields
from service.api.deps import CallerDep, UnitDep
from service.api.json_body import BoundedRoute
from service.usecases import dead_letters
from service.usecases.dead_letters import DeadLetterView
from service.web.problems import CALLER_RESPONSES, responses

router = APIRouter(
    prefix="/dead-letters",
    tags=["dead letters"],
    responses=CALLER_RESPONSES,
    route_class=BoundedRoute,
)


@router.get("", response_model=list[DeadLetterView], responses=responses(403))
async def list_dead_letters(
    uow: UnitDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[fields.Offset, Query()] = 0,
) -> list[DeadLetterView]:
    """Newest first; admins and services only."""
    return await dead_letters.latest(uow, caller, limit=limit, offset=offset)
