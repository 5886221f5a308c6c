"""Liveness, readiness and a detailed view for operators: the same routes in both apps."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import text

from service import __version__
from service.bootstrap import Resources
from service.clock import utcnow
from service.db.engine import session_scope
from service.db.repositories.outbox import OutboxRepository
from service.domain.errors import Forbidden
from service.web.deps import CallerDep, ResourcesDep
from service.web.problems import responses
from service.web.schemas import Health

router = APIRouter(tags=["health"])
#: Not ready: the same body, saying which check is down.
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": Health, "description": "A check is down"}
}

#: A probe answers within Kubernetes' default 1 s timeout budget of a few probes; a store or
#: sidecar slower than this counts as down.
CHECK_SECONDS = 2.0


async def _database(resources: Resources) -> dict[str, Any]:
    async def probe() -> int:
        async with session_scope(resources.sessionmaker) as session:
            await session.execute(text("SELECT 1"))
            return await OutboxRepository(session).pending_count()

    try:
        backlog = await asyncio.wait_for(probe(), CHECK_SECONDS)
    except TimeoutError:
        return {"status": "down", "error": f"no answer in {CHECK_SECONDS} s"}
    except Exception as error:  # any driver error means not ready
        return {"status": "down", "error": str(error)[:300]}
    return {"status": "up", "dialect": resources.engine.dialect.name, "outboxBacklog": backlog}


async def _storage(resources: Resources) -> dict[str, Any]:
    store = resources.store
    try:
        await asyncio.wait_for(asyncio.to_thread(store.check), CHECK_SECONDS)
    except TimeoutError:
        return {"status": "down", "kind": store.kind, "error": f"no answer in {CHECK_SECONDS} s"}
    except Exception as error:  # any store error means not ready
        return {"status": "down", "kind": store.kind, "error": str(error)[:300]}
    return {"status": "up", "kind": store.kind}


async def _sidecar(resources: Resources) -> dict[str, Any] | None:
    """The Dapr sidecar's outbound health, when events go through one."""
    publisher = resources.publisher
    if not publisher.crosses_processes:
        return None
    up = await publisher.healthy()
    return {"status": "up" if up else "down", "publisher": publisher.kind}


async def _checks(resources: Resources) -> dict[str, dict[str, Any]]:
    database, storage, sidecar = await asyncio.gather(
        _database(resources), _storage(resources), _sidecar(resources)
    )
    checks = {"database": database, "storage": storage}
    if sidecar is not None:
        checks["sidecar"] = sidecar
    return checks


def _all_up(checks: dict[str, Any]) -> bool:
    return all(c.get("status") == "up" for c in checks.values() if isinstance(c, dict))


async def readiness(resources: Resources) -> tuple[bool, dict[str, dict[str, Any]]]:
    """Whether the database, the file store and (with Dapr) the sidecar answer, and each check:
    /health/ready's verdict, for the other edges (gRPC's Health)."""
    checks = await _checks(resources)
    return _all_up(checks), checks


@router.get("/health", response_model=Health)
@router.get("/api/v1/operations/health", response_model=Health, include_in_schema=False)
async def health() -> Health:
    return Health(status="ok", version=__version__, time=utcnow())


@router.get("/health/live", response_model=Health)
async def live() -> Health:
    return Health(status="ok", version=__version__)


@router.get("/health/ready", response_model=Health, responses=UNAVAILABLE)
async def ready(resources: ResourcesDep, response: Response) -> Health:
    """Ready when the database, the file store and (with Dapr) the sidecar answer."""
    checks = await _checks(resources)
    ready = _all_up(checks)
    if not ready:
        response.status_code = 503
    return Health(status="ok" if ready else "unavailable", version=__version__, checks=checks)


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
    if not caller.sees_all:
        raise Forbidden("only admins and services may read the detailed health")
    checks: dict[str, Any] = await _checks(resources)
    ready = _all_up(checks)
    relay = resources.relay
    checks |= {
        "publisher": {"kind": resources.publisher.kind},
        "outboxRelay": {
            "published": relay.published,
            "consecutiveFailures": relay.failures,
            "lastError": relay.last_error,
        },
    }
    for name, probe in getattr(request.app.state, "health_probes", {}).items():
        checks[name] = probe()
    if not ready:
        response.status_code = 503
    return Health(
        status="ok" if ready else "unavailable",
        version=__version__,
        checks=checks,
        time=utcnow(),
    )
