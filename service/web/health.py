"""The health routes of the API (FastAPI's, documented); the answers are service.web.probes'."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from service.web import probes
from service.web.deps import CallerDep, ResourcesDep
from service.web.problems import responses
from service.web.schemas import Health

router = APIRouter(tags=["health"])
#: Not ready: the same body, saying which check is down.
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": Health, "description": "A check is down"}
}


@router.get("/health", response_model=Health)
@router.get("/api/v1/operations/health", response_model=Health, include_in_schema=False)
async def health() -> Health:
    return probes.health()


@router.get("/health/live", response_model=Health)
async def live() -> Health:
    return probes.live()


@router.get("/health/ready", response_model=Health, responses=UNAVAILABLE)
async def ready(resources: ResourcesDep, response: Response) -> Health:
    """Ready when the database, the file store and (with Dapr) the sidecar answer."""
    answer, up = await probes.ready(resources)
    if not up:
        response.status_code = 503
    return answer


@router.get(
    "/health/detailed",
    response_model=Health,
    responses=UNAVAILABLE | responses(401, 403, 422),  # 422: an identity header it cannot read
)
async def detailed(
    resources: ResourcesDep, request: Request, response: Response, caller: CallerDep
) -> Health:
    """Database, outbox relay, publisher and (when this process runs one) the worker: for
    admins and the service token only, since it shows the service's internals."""
    answer, up = await probes.detailed(
        resources, caller, getattr(request.app.state, "health_probes", {})
    )
    if not up:
        response.status_code = 503
    return answer
