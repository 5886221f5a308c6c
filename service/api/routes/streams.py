"""/tasks/{id}/stream and /tasks/stream: Server-Sent Events of tasks as they change.

sse-starlette writes the events: it sends the keep-alive comments, notices a client that went
away (and cancels the stream, whose subscription then ends), and bounds a send to a client that
stopped reading. Starlette's StreamingResponse would need all three written by hand.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from typing import Annotated, Any, Protocol
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request
from pydantic import Field
from sse_starlette import EventSourceResponse, ServerSentEvent

from service.api.deps import CallerDep, ResourcesDep
from service.api.routes.tasks import FilterFields, filters_of
from service.config import Settings
from service.domain.tasks import TaskStatus
from service.events.changefeed import ChangeFeed, Subscription
from service.usecases import streams
from service.usecases.streams import StreamEvent
from service.web import methods, observe
from service.web.problems import CALLER_RESPONSES, responses

router = APIRouter(prefix="/tasks", tags=["streams"], responses=CALLER_RESPONSES)

#: A stream's send to a client that stopped reading gives up after this long (it reconnects).
SEND_TIMEOUT = 30.0

_STATUS = "|".join(s.value for s in TaskStatus)
_STATUS_LIST = rf"^ *({_STATUS}) *(, *({_STATUS}) *)*$"

_STREAM_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-Sent Events; each has an id to resume from (Last-Event-ID)",
        "content": {"text/event-stream": {"schema": {"type": "object"}}},
    }
}


def _last_event_id(form: str) -> Any:
    return Header(
        alias="Last-Event-ID",
        max_length=40,
        description=f"the id of the last event received ({form}): the stream resumes after it; "
        "an id this stream cannot have sent starts it afresh, with a snapshot",
    )


TaskLastEventId = Annotated[str | None, _last_event_id("`<outbox id>-<log id>`")]
ListLastEventId = Annotated[str | None, _last_event_id("`<outbox id>`")]


class StreamQuery(FilterFields):
    """The task list's filters (GET /tasks); pageSize sizes the first snapshot."""

    page_size: int = Field(20, ge=1, le=100)


def _feed(request: Request) -> ChangeFeed:
    feed: ChangeFeed = request.app.state.change_feed
    return feed


class _Stream(Protocol):
    subscription: Subscription

    def batches(self) -> AsyncIterator[list[StreamEvent]]: ...


@functools.lru_cache(maxsize=4096)
def _frame(event: StreamEvent) -> bytes:
    """An event as sent: encoded once for all the streams that send it (a list stream's event
    is the same for every client that follows the list)."""
    return ServerSentEvent(data=event.json, event=event.event, id=event.id).encode()


def _respond(stream: _Stream, settings: Settings, request: Request) -> EventSourceResponse:
    """The stream as SSE, for at most OPS_STREAM_MAX_SECONDS (then the client resumes by id).
    From here on it is no longer a request being answered (observe.streaming)."""
    observe.streaming(request.scope)
    ending = asyncio.get_running_loop().call_later(
        settings.stream_max_seconds, stream.subscription.end
    )

    async def sse() -> AsyncIterator[bytes]:
        try:
            async for batch in stream.batches():
                # one send per batch: each send costs a cancel scope and a write, whatever its
                # size (200 clients, 3 events a task, 50 tasks/s: 30,000 sends a second)
                yield b"".join(map(_frame, batch))
        finally:
            ending.cancel()

    return EventSourceResponse(
        sse(),
        ping=settings.stream_keepalive_seconds,
        send_timeout=SEND_TIMEOUT,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get("/stream", response_model=None, responses={**_STREAM_ANSWER, **responses(503)})
async def tasks_stream(
    query: Annotated[StreamQuery, Query()],
    request: Request,
    caller: CallerDep,
    resources: ResourcesDep,
    last_event_id: ListLastEventId = None,
) -> EventSourceResponse:
    """The tasks the list's filters select, as they change: first a `snapshot` event (the first
    page), then an event per state change or progress notice (`created`, `started`,
    `progress`, `completed`, …) with the task. Users follow their own tasks, admins all."""
    filters = filters_of(query)
    stream = await streams.open_list_stream(
        resources.unit,
        _feed(request),
        caller,
        filters,
        page_size=query.page_size,
        params_cap=resources.settings.list_params_max_bytes,
        last_event_id=last_event_id,
    )
    return _respond(stream, resources.settings, request)


@router.get(
    "/{task_id}/stream", response_model=None, responses={**_STREAM_ANSWER, **responses(404, 503)}
)
async def task_stream(
    task_id: UUID,
    request: Request,
    caller: CallerDep,
    resources: ResourcesDep,
    last_event_id: TaskLastEventId = None,
) -> EventSourceResponse:
    """One task as it changes: first a `snapshot` event, then its state changes and progress
    notices (each with the task) and its new `log` lines; the stream ends after `deleted`."""
    stream = await streams.open_task_stream(
        resources.unit, _feed(request), caller, task_id, last_event_id
    )
    return _respond(stream, resources.settings, request)


# /tasks/{task_id} routes would take these at /tasks/stream (as a task id "stream": a 422)
methods.refuse(router, "/stream", ["DELETE", "PATCH", "PUT", "POST"])
