"""Publishing through the Dapr sidecar's HTTP API.

The SDK's client is not used here on purpose: its constructor blocks up to 60 s waiting for
the sidecar and its publish call has no timeout of its own, while the relay must fail fast
and retry later. One long-lived aiohttp session with short timeouts does exactly that.

aiohttp (a dependency of the `dapr` SDK), not httpx: on this path httpx cost ~2.5 ms of CPU
per request, aiohttp ~0.5 ms (bench/DAPR.md). httpcore 1.0 tries `import sniffio` several
times per request, and anyio no longer installs sniffio: each failed import searches
sys.path again. And httpx keeps only 20 connections alive, so with 32 requests in flight
it kept closing and reopening connections to the sidecar.

A batch goes out through the bulk publish API (`POST /v1.0/publish/bulk/...`), one request
per topic and up to `bulk_size` events: the sidecar then publishes the entries to Redis in
parallel, unordered. The relay only ever puts one event of a task into one batch, so a
task's events still leave in order.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Sequence

import aiohttp

from service.config import Settings
from service.events.base import OutgoingEvent, PublishError
from service.events.cloudevents import CONTENT_TYPE, to_structured_body

_RETRY_ONCE = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)


class DaprPublisher:
    kind = "dapr"
    max_in_flight = 32  # requests to the sidecar at once
    bulk_size = 100  # events per bulk publish request
    crosses_processes = True

    def __init__(self, settings: Settings) -> None:
        self.endpoint = settings.dapr_http_endpoint.rstrip("/")
        token = settings.dapr_api_token
        self.headers = {"dapr-api-token": token} if token else {}
        self.pubsub = settings.pubsub_name
        self.prefix = settings.topic_prefix
        self._session: aiohttp.ClientSession | None = None
        self._limit: asyncio.Semaphore | None = None

    def topic(self, name: str) -> str:
        return self.prefix + name

    def _client(self) -> aiohttp.ClientSession:
        """Created on first use, inside the running loop."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self.headers,
                timeout=aiohttp.ClientTimeout(total=5.0, connect=1.0),
                connector=aiohttp.TCPConnector(limit=self.max_in_flight * 2),
                skip_auto_headers=("User-Agent",),
            )
            self._limit = asyncio.Semaphore(self.max_in_flight)
        return self._session

    async def _post(
        self, path: str, body: bytes, content_type: str, traceparent: str | None = None
    ) -> tuple[int, bytes]:
        """POST to the sidecar; a kept-alive connection the sidecar closed is retried once.

        `traceparent` goes as the request's header: the sidecar writes its own trace context
        into the CloudEvents it publishes, which then continues ours instead of a new trace.
        """
        session = self._client()
        assert self._limit is not None
        url = self.endpoint + path
        headers = {"Content-Type": content_type}
        if traceparent:
            headers["traceparent"] = traceparent
        async with self._limit:
            for attempt in (1, 2):
                try:
                    async with session.post(url, data=body, headers=headers) as response:
                        return response.status, await response.read()
                except _RETRY_ONCE as error:
                    if attempt == 2:
                        raise PublishError(
                            f"sidecar unreachable: {type(error).__name__}: {error}"
                        ) from error
                except (aiohttp.ClientError, TimeoutError) as error:
                    raise PublishError(
                        f"sidecar unreachable: {type(error).__name__}: {error}"
                    ) from error
        raise AssertionError("unreachable")

    async def publish(self, event: OutgoingEvent) -> None:
        status, body = await self._post(
            f"/v1.0/publish/{self.pubsub}/{self.topic(event.topic)}",
            to_structured_body(event),
            CONTENT_TYPE,
            event.traceparent,
        )
        if status != 204:
            text = body[:300].decode(errors="replace")
            raise PublishError(f"sidecar refused the event ({status}): {text}")

    async def publish_batch(self, events: Sequence[OutgoingEvent]) -> tuple[set[str], str | None]:
        """Hand over events of distinct tasks at once; returns the ids accepted and an error.

        Order among the events is not kept (the relay never passes two events of one task).
        """
        # one trace context per request to the sidecar (see _post): events of other traces
        # go in other requests
        by_topic: dict[tuple[str, str | None], list[OutgoingEvent]] = defaultdict(list)
        for event in events:
            by_topic[event.topic, event.traceparent].append(event)
        chunks = [
            group[i : i + self.bulk_size]
            for group in by_topic.values()
            for i in range(0, len(group), self.bulk_size)
        ]
        results = await asyncio.gather(*(self._publish_chunk(c) for c in chunks))
        accepted: set[str] = set()
        errors = []
        for ok, error in results:
            accepted |= ok
            if error is not None:
                errors.append(error)
        return accepted, errors[0] if errors else None

    async def _publish_chunk(self, chunk: list[OutgoingEvent]) -> tuple[set[str], str | None]:
        ids = {e.id for e in chunk}
        try:
            if len(chunk) == 1:
                await self.publish(chunk[0])
                return ids, None
            entries = b",".join(
                b'{"entryId":%s,"contentType":"%s","event":%s}'
                % (json.dumps(e.id).encode(), CONTENT_TYPE.encode(), to_structured_body(e))
                for e in chunk
            )
            status, body = await self._post(
                f"/v1.0/publish/bulk/{self.pubsub}/{self.topic(chunk[0].topic)}",
                b"[" + entries + b"]",
                "application/json",
                chunk[0].traceparent,
            )
        except PublishError as error:
            return set(), str(error)
        if status in (200, 204):
            return ids, None
        failed = ids  # unless the sidecar says which entries failed (a 500 with failedEntries)
        try:
            listed = {str(f["entryId"]) for f in json.loads(body).get("failedEntries") or []}
            if listed:
                failed = listed & ids
        except (ValueError, TypeError, KeyError, AttributeError):
            pass
        text = body[:300].decode(errors="replace")
        message = f"sidecar refused {len(failed)} of {len(ids)} events ({status}): {text}"
        return ids - failed, message

    async def healthy(self) -> bool:
        """The sidecar's outbound health (it can publish); False when it does not answer."""
        try:
            async with self._client().get(
                self.endpoint + "/v1.0/healthz/outbound", timeout=aiohttp.ClientTimeout(total=1.0)
            ) as response:
                return response.status == 204
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
