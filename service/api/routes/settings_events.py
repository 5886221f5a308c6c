"""The API's own Dapr subscription: `settings.changed` drops the key from this replica's cache.

Every replica must hear every change, so the subscription uses a pub/sub component of its own
(OPS_SETTINGS_PUBSUB_NAME) whose consumer group is unique per sidecar (Redis: consumerID
"{uuid}"), not the shared one, where the replicas of an app id compete for each message.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request

from service.api.deps import ResourcesDep
from service.domain.settings import CHANGED

logger = logging.getLogger(__name__)

ROUTE = "/events/settings/changed"
SUCCESS, DROP = {"status": "SUCCESS"}, {"status": "DROP"}


def require_app_token(resources: ResourcesDep, dapr_api_token: str | None = Header(None)) -> None:
    """When an app token is configured, only our sidecar (which sends it) may call these routes."""
    expected = resources.settings.dapr_app_token
    if expected and dapr_api_token != expected:
        raise HTTPException(401, "missing or wrong dapr-api-token")


router = APIRouter(include_in_schema=False, dependencies=[Depends(require_app_token)])


@router.get("/dapr/subscribe")
async def dapr_subscribe(resources: ResourcesDep) -> list[dict[str, Any]]:
    settings = resources.settings
    if not settings.settings_pubsub_name:
        return []
    return [
        {
            "pubsubname": settings.settings_pubsub_name,
            "topic": settings.topic_prefix + CHANGED,
            "routes": {"default": ROUTE},
        }
    ]


@router.post(ROUTE)
async def settings_changed(request: Request, resources: ResourcesDep) -> dict[str, str]:
    """Drop the changed key; an event that names none is dropped (retrying would not help)."""
    try:
        body = json.loads(await request.body())
    except ValueError:
        body = None
    data = body.get("data") if isinstance(body, dict) else None
    key = data.get("key") if isinstance(data, dict) else None
    if not isinstance(key, str):
        logger.warning("settings event without a key", extra={"action": "settings.poison"})
        return DROP
    resources.settings_cache.drop(key)
    logger.info("settings cache dropped", extra={"action": "settings.dropped", "key": key})
    return SUCCESS
