"""Liveness, readiness and the detailed view for operators: the answers, without a framework,
so the API's FastAPI routes (service.web.health) and the worker's Starlette routes
(worker.routes) answer alike."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import text

from service import __version__
from service.bootstrap import Resources
from service.clock import utcnow
from service.db.engine import session_scope
from service.db.repositories.outbox import OutboxRepository
from service.domain.callers import Caller
from service.domain.errors import Forbidden
from service.web.schemas import Health

#: A probe answers within Kubernetes' default 1 s timeout budget of a few probes; a store or
#: sidecar slower than this counts as down.
CHECK_SECONDS = 2.0

#: What a process runs beside its app (the worker), by name: each one's part of /health/detailed.
Probes = Mapping[str, Callable[[], Any]]


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


def health() -> Health:
    return Health(status="ok", version=__version__, time=utcnow())


def live() -> Health:
    return Health(status="ok", version=__version__)


async def ready(resources: Resources) -> tuple[Health, bool]:
    """/health/ready's answer, and whether it is ready (503 when not)."""
    ready, checks = await readiness(resources)
    status = "ok" if ready else "unavailable"
    return Health(status=status, version=__version__, checks=checks), ready


async def detailed(resources: Resources, caller: Caller, probes: Probes) -> tuple[Health, bool]:
    """/health/detailed's answer (for admins and the service token only), and whether every
    check is up (503 when not)."""
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
    for name, probe in probes.items():
        checks[name] = probe()
    status = "ok" if ready else "unavailable"
    return Health(status=status, version=__version__, checks=checks, time=utcnow()), ready
