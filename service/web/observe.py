"""Per request: a span, the request metrics and an access log line (one ASGI middleware).

The route is its template (`/api/v1/operations/tasks/{task_id}`), never the raw path, so a
label or a log field takes a bounded set of values; a path no route matched is `unmatched`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.telemetry import metrics, tracing

access = logging.getLogger("service.access")

#: probes and the scraper: counted, but their access lines are debug-level noise
QUIET = frozenset({"/health/live", "/health/ready", "/metrics"})


def route_of(scope: Scope) -> str:
    """The template of the route that handled the request, or `unmatched`."""
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not path:
        return "unmatched"
    if route.__class__.__name__ == "Mount":
        return f"{path}/{{path}}"
    return str(path)


class ObservedApp:
    """Wraps an app (the API or the worker) with tracing, metrics and access logs."""

    def __init__(self, app: ASGIApp, *, name: str) -> None:
        self.app = app
        self.name = name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method = scope["method"]
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        status = 500
        parent = tracing.context_from_headers(headers)

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        with tracing.span(f"{method} request", parent=parent, kind=SpanKind.SERVER) as current:
            try:
                await self.app(scope, receive, observed_send)
            finally:
                route = route_of(scope)
                current.update_name(f"{method} {route}")
                current.set_attributes(
                    {
                        "http.request.method": method,
                        "http.route": route,
                        "http.response.status_code": status,
                        "ops.app": self.name,
                    }
                )
                if status >= 500:
                    current.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))
                self._record(scope, method, route, status, time.perf_counter() - started)

    def _record(self, scope: Scope, method: str, route: str, status: int, took: float) -> None:
        metrics.REQUESTS.labels(self.name, method, route, str(status)).inc()
        metrics.REQUEST_SECONDS.labels(self.name, method, route).observe(took)
        if status >= 500:
            metrics.REQUEST_ERRORS.labels(self.name, method, route).inc()
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
        level = logging.DEBUG if route in QUIET else logging.INFO
        access.log(level, "%s %s %d", method, scope.get("path", ""), status, extra=fields)
