"""/dead-letters: events the broker gave up delivering (admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from service.api.deps import CallerDep, SessionDep
from service.api.problems import PROBLEM_RESPONSES
from service.usecases import dead_letters
from service.usecases.dead_letters import DeadLetterView

router = APIRouter(prefix="/dead-letters", tags=["dead letters"], responses=PROBLEM_RESPONSES)


@router.get("", response_model=list[DeadLetterView])
async def list_dead_letters(
    session: SessionDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[DeadLetterView]:
    """Newest first."""
    return await dead_letters.latest(session, caller, limit=limit, offset=offset)
