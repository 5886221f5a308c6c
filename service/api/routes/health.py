"""Liveness, readiness and a detailed view for operators."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import text

from service import __version__
from service.api.deps import ResourcesDep
from service.api.schemas import Health
from service.bootstrap import Resources
from service.clock import utcnow
from service.db.engine import session_scope
from service.db.repositories.outbox import OutboxRepository

router = APIRouter(tags=["health"])


async def _database(resources: Resources) -> dict[str, Any]:
    try:
        async with session_scope(resources.sessionmaker) as session:
            await session.execute(text("SELECT 1"))
            backlog = await OutboxRepository(session).pending_count()
    except Exception as error:  # any driver error means not ready
        return {"status": "down", "error": str(error)[:300]}
    return {"status": "up", "dialect": resources.engine.dialect.name, "outboxBacklog": backlog}


@router.get("/health", response_model=Health)
@router.get("/api/v1/operations/health", response_model=Health, include_in_schema=False)
async def health() -> Health:
    return Health(status="ok", version=__version__, time=utcnow())


@router.get("/health/live", response_model=Health)
async def live() -> Health:
    return Health(status="ok", version=__version__)


@router.get("/health/ready", response_model=Health)
async def ready(resources: ResourcesDep, response: Response) -> Health:
    """Ready when the database answers."""
    database = await _database(resources)
    if database["status"] != "up":
        response.status_code = 503
    return Health(
        status="ok" if database["status"] == "up" else "unavailable",
        version=__version__,
        checks={"database": database},
    )


@router.get("/health/detailed", response_model=Health)
async def detailed(resources: ResourcesDep, request: Request, response: Response) -> Health:
    """Database, outbox relay, publisher and (when this process runs one) the worker."""
    database = await _database(resources)
    relay = resources.relay
    checks: dict[str, Any] = {
        "database": database,
        "publisher": {"kind": resources.publisher.kind},
        "outboxRelay": {
            "published": relay.published,
            "consecutiveFailures": relay.failures,
            "lastError": relay.last_error,
        },
    }
    for name, probe in getattr(request.app.state, "health_probes", {}).items():
        checks[name] = probe()
    if database["status"] != "up":
        response.status_code = 503
    return Health(
        status="ok" if database["status"] == "up" else "unavailable",
        version=__version__,
        checks=checks,
        time=utcnow(),
    )
