"""/asyncapi.json: the AsyncAPI 3.0 document of the events, beside /openapi.json (no identity)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from service.api import asyncapi
from service.api.deps import ResourcesDep

router = APIRouter(tags=["events"])


@router.get("/asyncapi.json", include_in_schema=False)
async def asyncapi_document(resources: ResourcesDep) -> dict[str, Any]:
    """Every topic the service publishes and consumes, with its CloudEvent payload schema."""
    settings = resources.settings
    return asyncapi.document(settings.topic_prefix, settings.pubsub_name)
