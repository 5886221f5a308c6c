"""POST /tasks without the framework's per-request machinery, for the requests that need none of it.

Creating a task is the API's hottest request, and most of its CPU went to the framework, not
to the create: measured in-process on PostgreSQL with 16 concurrent clients, 1.40 ms of CPU a
create through FastAPI against 0.70 ms through this path, which reads the same headers and
body with the same functions and calls the same use case (bench/README.md, "Seventh session").
The difference is the machinery every route pays: six middleware layers (two of them the body
limits), the router's walk of the included routers, the dependency tree (the caller's three
security schemes and two headers, the resources) and the response model's second validation.

This middleware answers a create itself only when the request is plain: `POST` to exactly the
create path, no query, a JSON body within OPS_MAX_BODY_BYTES that parses and validates, a caller
the identity headers name, no Idempotency-Key, a `traceparent` within its bound, and FastAPI's
own telemetry off (its server span learns the route from the router). Anything else, and any
fault in reading the request, goes to the app as it came (the body read is handed on), so
every refusal is the route's own answer, word for word. Once the use case is called, its
errors are answered by the app's exception handlers, as the route's are. The OpenAPI document
still describes the route (service.api.routes.tasks.create_task), which both paths share
through `submit_create` and `answer_created`.
"""

from __future__ import annotations

import inspect

from fastapi import FastAPI, Request, Response
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api import fields, json_body
from service.api.routes import tasks
from service.api.schemas import TaskCreate
from service.domain.callers import Caller
from service.web import callers

#: The header FastAPI checks as `traceparent: Header(max_length=64)` on the route.
TRACEPARENT_MAX = 64


class FastCreate:
    """Answers plain creates (POST `path`) directly; hands every other request to `app`."""

    def __init__(self, app: ASGIApp, *, api: FastAPI, path: str) -> None:
        self.app = app
        self.api = api
        self.path = path
        #: the route whose work this does: the request's route for its metrics and access line
        self.route = next(
            r
            for r in tasks.router.routes
            if isinstance(r, APIRoute) and r.endpoint is tasks.create_task
        )
        #: creates this path answered (the others went to the route)
        self.answered = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._may_take(scope):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if not self._plain(headers):
            await self.app(scope, receive, send)
            return
        limits: fields.InputLimits = self.api.state.input_limits
        messages, raw = await _read_body(receive, limits.max_body_bytes)
        token = fields.LIMITS.set(limits)  # as the route has them (json_body.BoundedRoute)
        try:
            read = None if raw is None else await self._read(headers, raw)
            if read is None:  # the route answers, from the same bytes
                await self.app(scope, _replaying(messages, receive), send)
                return
            await self._create(scope, receive, send, headers, *read)
        finally:
            fields.LIMITS.reset(token)

    async def _create(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: Headers,
        body: TaskCreate,
        caller: Caller,
    ) -> None:
        """The route's work and answer, for a request read."""
        scope["route"] = self.route
        self.answered += 1
        try:
            resources = self.api.state.resources
            traceparent = headers.get("traceparent")
            submitted = await tasks.submit_create(resources, caller, body, None, traceparent)
            collected = Response()
            del collected.headers["content-length"]
            answer = tasks.answer_created(submitted, collected)
        except Exception as error:
            await self._answer_error(scope, receive, send, error)
            return
        # as FastAPI sends a route's answer: the response model dumped by alias, then the
        # headers the route set
        response = Response(
            answer.model_dump_json(by_alias=True),
            status_code=201 if submitted.created else collected.status_code,
            media_type="application/json",
        )
        response.headers.raw.extend(collected.headers.raw)
        await response(scope, receive, send)

    def _may_take(self, scope: Scope) -> bool:
        return (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] == self.path
            and not scope.get("root_path")
            and not scope.get("query_string")
            and scope.get("fastapi.telemetry") is None
        )

    @staticmethod
    def _plain(headers: Headers) -> bool:
        if "idempotency-key" in headers:
            return False
        traceparent = headers.get("traceparent")
        if traceparent is not None and len(traceparent) > TRACEPARENT_MAX:
            return False
        return json_body.is_json_type(headers.get("content-type"))

    async def _read(self, headers: Headers, raw: bytes) -> tuple[TaskCreate, Caller] | None:
        """The body and the caller as the route reads them; None where the route would refuse
        (it then says why)."""
        try:
            body = TaskCreate.model_validate(json_body.parse(raw))
            caller = await callers.caller_from_headers(self.api.state.resources, headers)
        except Exception:
            return None
        return body, caller

    async def _answer_error(
        self, scope: Scope, receive: Receive, send: Send, error: Exception
    ) -> None:
        """As Starlette's ExceptionMiddleware would: the handler of the error's nearest class;
        an error with none (a bug) goes on to the app's outermost layer, its 500."""
        handlers = self.api.exception_handlers
        handler = next(
            (handlers[c] for c in type(error).__mro__ if c in handlers and c is not Exception),
            None,
        )
        if handler is None:
            raise error
        answer = handler(Request(scope, receive), error)
        if inspect.isawaitable(answer):
            answer = await answer
        await answer(scope, receive, send)


async def _read_body(receive: Receive, limit: int) -> tuple[list[Message], bytes | None]:
    """The request's messages as received, and its body; None for the body when it is over
    `limit` or the client went away (the route then answers from the messages)."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        size += len(message.get("body", b""))
        if size > limit:
            return messages, None
        if not message.get("more_body", False):
            break
    if size == 0:
        return messages, None
    return messages, b"".join(m.get("body", b"") for m in messages)


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """`receive` as if nothing had been read: the messages already taken first."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
