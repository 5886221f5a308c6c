"""Publishing through the Dapr sidecar's HTTP API.

The SDK's client is not used here on purpose: its constructor blocks up to 60 s waiting for
the sidecar and its publish call has no timeout of its own, while the relay must fail fast
and retry later. One long-lived httpx client with short timeouts does exactly that.
"""

from __future__ import annotations

import httpx

from service.config import Settings
from service.events.base import OutgoingEvent, PublishError
from service.events.cloudevents import CONTENT_TYPE, to_structured_body


class DaprPublisher:
    kind = "dapr"
    max_in_flight = 32  # events handed over at once by the relay
    crosses_processes = True

    def __init__(self, settings: Settings, *, client: httpx.AsyncClient | None = None) -> None:
        headers = {"dapr-api-token": settings.dapr_api_token} if settings.dapr_api_token else {}
        self.client = client or httpx.AsyncClient(
            base_url=settings.dapr_http_endpoint,
            headers=headers,
            timeout=httpx.Timeout(5.0, connect=1.0),
        )
        self.pubsub = settings.pubsub_name
        self.prefix = settings.topic_prefix

    def topic(self, name: str) -> str:
        return self.prefix + name

    async def publish(self, event: OutgoingEvent) -> None:
        try:
            response = await self.client.post(
                f"/v1.0/publish/{self.pubsub}/{self.topic(event.topic)}",
                content=to_structured_body(event),
                headers={"Content-Type": CONTENT_TYPE},
            )
        except httpx.HTTPError as error:
            raise PublishError(f"sidecar unreachable: {type(error).__name__}: {error}") from error
        if response.status_code != 204:
            raise PublishError(
                f"sidecar refused the event ({response.status_code}): {response.text[:300]}"
            )

    async def healthy(self) -> bool:
        """The sidecar's outbound health (it can publish); False when it does not answer."""
        try:
            response = await self.client.get("/v1.0/healthz/outbound", timeout=1.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 204

    async def close(self) -> None:
        await self.client.aclose()
