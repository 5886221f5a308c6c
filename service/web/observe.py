"""Per request: the request metrics, an access log line, and the caller's trace context.

The route is its template (`/api/v1/operations/tasks/{task_id}`), never the raw path, so a
label or a log field takes a bounded set of values; a path no route matched is `unmatched`.

The request's span is FastAPI's own (its native OpenTelemetry support opens a server span per
request, continuing an incoming `traceparent`, as soon as a tracer provider is installed:
OPS_OTEL_ENABLED). With tracing off this middleware still makes the caller's `traceparent`
the current context, so the tasks a request creates carry the caller's trace on.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from opentelemetry import context as otel_context, trace
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.telemetry import metrics, tracing

access = logging.getLogger("service.access")

#: probes and the scraper: counted, but their access lines are debug-level noise
QUIET = frozenset({"/health/live", "/health/ready", "/metrics"})
#: the W3C trace context's headers (ASGI names them in lower case)
TRACE_HEADERS = frozenset({b"traceparent", b"tracestate"})


def route_of(scope: Scope) -> str:
    """The full template of the route that handled the request, or `unmatched`.

    A route included with a prefix knows only its own part (`/tasks/{task_id}`); the prefix
    is the part of the path before what the route's pattern matched: a literal, since our
    prefixes hold no parameters.
    """
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not template:
        return "unmatched"
    if isinstance(route, Mount):
        return f"{template.removesuffix('/{path}')}/{{path}}"
    pattern = getattr(route, "path_regex", None)
    path: str = scope.get("path", "")
    if pattern is None or pattern.match(path):
        return str(template)
    for index, char in enumerate(path):
        if char == "/" and index and pattern.match(path[index:]):
            return path[:index] + str(template)
    return str(template)


class ObservedApp:
    """Wraps an app (the API or the worker) with request metrics and access logs."""

    def __init__(self, app: ASGIApp, *, name: str) -> None:
        self.app = app
        self.name = name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        token = None
        if not trace.get_current_span().get_span_context().is_valid:  # no request span: off
            headers = {
                k.decode("latin-1"): v.decode("latin-1")
                for k, v in scope["headers"]
                if k in TRACE_HEADERS
            }
            if headers:
                token = otel_context.attach(tracing.context_from_headers(headers))
        try:
            await self.app(scope, receive, observed_send)
        finally:
            self._record(scope, status, time.perf_counter() - started)
            if token is not None:
                otel_context.detach(token)

    def _record(self, scope: Scope, status: int, took: float) -> None:
        method, route = scope["method"], route_of(scope)
        metrics.REQUESTS.labels(self.name, method, route, str(status)).inc()
        metrics.REQUEST_SECONDS.labels(self.name, method, route).observe(took)
        if status >= 500:
            metrics.REQUEST_ERRORS.labels(self.name, method, route).inc()
        level = logging.DEBUG if route in QUIET else logging.INFO
        if not access.isEnabledFor(level):
            return
        fields: dict[str, Any] = {
            "action": "http.request",
            "method": method,
            "route": route,
            "path": scope.get("path", ""),
            "status": status,
            "duration_ms": round(took * 1000, 3),
        }
        task_id = (scope.get("path_params") or {}).get("task_id")
        if task_id is not None:
            fields["task_id"] = str(task_id)
        access.log(level, "%s %s %d", method, scope.get("path", ""), status, extra=fields)
