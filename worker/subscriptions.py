"""Dapr pub/sub: the subscription list (with CEL routing rules) and the topic routes.

Subscriptions are served from GET /dapr/subscribe rather than shipped as declarative files:
the rules are generated from the handler registry, so routing can never drift from the
handlers this worker really has, and the topic prefix (one per test run) is applied in one
place. DaprApp's decorator cannot express rules or a default route, so the list is ours.

The routes are plain endpoints (keyword path parameters, the request, a JSON value back):
worker.routes serves them with Starlette, with the app-token check before each, and
worker.openapi describes them with FastAPI, which the worker loads only for its docs.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request

from service.clock import utcnow
from service.config import Settings
from service.domain.events import DEAD_LETTER_TOPIC, EventType
from service.events.cloudevents import PoisonEvent, doorbell_from
from worker.registry import HandlerRegistry
from worker.service import WorkerService

logger = logging.getLogger(__name__)

SUCCESS, RETRY, DROP = {"status": "SUCCESS"}, {"status": "RETRY"}, {"status": "DROP"}


def _quote(value: str) -> str:
    return json.dumps(value)  # a CEL string literal is a JSON string literal for our names


def routing_rules(registry: HandlerRegistry) -> list[dict[str, str]]:
    """One rule per registered (taskType, entityType); specific entity types before wildcards."""
    rules = []
    keys = sorted(registry.registered(), key=lambda k: k.entity_type is None)
    for key in keys:
        match = f"has(event.data.taskType) && event.data.taskType == {_quote(key.task_type)}"
        path = f"/events/routed/{key.task_type}"
        if key.entity_type is not None:
            match += (
                " && has(event.data.entityType)"
                f" && event.data.entityType == {_quote(key.entity_type)}"
            )
            path += f"/{key.entity_type}"
        rules.append({"match": match, "path": path})
    return rules


def subscriptions(settings: Settings, registry: HandlerRegistry) -> list[dict[str, Any]]:
    prefix, pubsub = settings.topic_prefix, settings.pubsub_name
    dead_letter = prefix + DEAD_LETTER_TOPIC
    return [
        {
            "pubsubname": pubsub,
            "topic": prefix + EventType.CREATED.value,
            "routes": {"rules": routing_rules(registry), "default": "/events/unrouted"},
            "deadLetterTopic": dead_letter,
        },
        {
            "pubsubname": pubsub,
            "topic": prefix + EventType.RETRIED.value,
            "routes": {"default": "/events/retried"},
            "deadLetterTopic": dead_letter,
        },
        {"pubsubname": pubsub, "topic": dead_letter, "routes": {"default": "/events/deadletter"}},
    ]


def require_app_token(request: Request) -> None:
    """When an app token is configured, only our sidecar (which sends it) may call these routes."""
    expected = request.app.state.resources.settings.dapr_app_token
    if expected and request.headers.get("dapr-api-token") != expected:
        raise HTTPException(401, "missing or wrong dapr-api-token")


def _worker(request: Request) -> WorkerService:
    worker: WorkerService | None = request.app.state.worker.worker
    if worker is None:
        raise HTTPException(503, "the worker is starting")
    return worker


async def dapr_subscribe(request: Request) -> list[dict[str, Any]]:
    worker = _worker(request)
    return subscriptions(worker.resources.settings, worker.registry)


async def _body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:
        return None


async def _doorbell(request: Request, route: str) -> dict[str, str]:
    """Answer at once: the claim query, not the broker, decides who runs the task."""
    worker = _worker(request)
    body = await _body(request)
    try:
        bell = doorbell_from(body)
    except PoisonEvent as error:
        worker.note_delivery(route, body, error=str(error))
        logger.warning(
            "poison event dropped", extra={"action": "event.poison", "error": str(error)}
        )
        return DROP
    if worker.stopping:
        return RETRY  # another replica, or this one after restart, takes it
    worker.note_delivery(route, body)
    worker.ring(bell.available_at)
    return SUCCESS


async def routed(task_type: str, request: Request) -> dict[str, str]:
    return await _doorbell(request, f"/events/routed/{task_type}")


async def routed_entity(task_type: str, entity_type: str, request: Request) -> dict[str, str]:
    return await _doorbell(request, f"/events/routed/{task_type}/{entity_type}")


async def unrouted(request: Request) -> dict[str, str]:
    """No rule matched: the runner claims it and fails it (no handler) with a clear message."""
    return await _doorbell(request, "/events/unrouted")


async def retried(request: Request) -> dict[str, str]:
    return await _doorbell(request, "/events/retried")


async def dead_letter(request: Request) -> dict[str, str]:
    """Record what the broker gave up on; RETRY while the database cannot take it."""
    worker = _worker(request)
    body = await _body(request)
    if not isinstance(body, dict):
        return DROP
    worker.note_delivery("/events/deadletter", body)
    from service.usecases import dead_letters  # with the first dead letter, not at start

    try:
        async with worker.resources.unit() as uow:
            await dead_letters.record(uow, body, topic=request.headers.get("topic"), now=utcnow())
    except Exception:
        logger.exception("dead letter not recorded", extra={"action": "deadletter.failed"})
        return RETRY
    logger.warning("dead letter recorded", extra={"action": "deadletter.recorded"})
    return SUCCESS
