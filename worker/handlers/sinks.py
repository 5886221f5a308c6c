"""The sink an import task asks for in its params."""

from __future__ import annotations

import httpx

from service.bootstrap import Resources
from service.bulk.params import SinkParams
from service.sinks.base import Sink
from service.sinks.dapr import DaprServiceSink
from service.sinks.local import LocalSink


def build_sink(resources: Resources, params: SinkParams) -> Sink:
    if params.sink == "local":
        return LocalSink(resources.sessionmaker)
    # the params' own validation made sure a service sink names both
    assert params.target_service is not None
    assert params.method is not None
    settings = resources.settings
    headers = {"dapr-api-token": settings.dapr_api_token} if settings.dapr_api_token else {}
    client = httpx.AsyncClient(
        base_url=settings.dapr_http_endpoint, headers=headers, timeout=httpx.Timeout(60, connect=2)
    )
    return DaprServiceSink(client, params.target_service, params.method)
