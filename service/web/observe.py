"""Per request: the request metrics, an access log line, and the caller's trace context.

The route is its template (`/api/v1/operations/tasks/{task_id}`), never the raw path, so a
label or a log field takes a bounded set of values; a path no route matched is `unmatched`.

The API's request span is FastAPI's own (its native OpenTelemetry support opens a server span
per request, continuing an incoming `traceparent`, as soon as a tracer provider is installed:
OPS_OTEL_ENABLED); the worker's app, Starlette's own, has none, so this middleware opens one
like it (`{method} {route}`, kind SERVER). With tracing off it still makes the caller's
`traceparent` the current context, so the tasks a request creates carry the caller's trace on.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import context as otel_context, trace
from opentelemetry.trace import Span, SpanKind, StatusCode
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.telemetry import metrics, tracing

access = logging.getLogger("service.access")

#: probes and the scraper: counted, but their access lines are debug-level noise
QUIET = frozenset({"/health/live", "/health/ready", "/metrics"})
#: the W3C trace context's headers (ASGI names them in lower case)
TRACE_HEADERS = frozenset({b"traceparent", b"tracestate"})
#: methods a span names as they are (OpenTelemetry's HTTP conventions); others are `HTTP`
KNOWN_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE"}
)


#: each route's full template once found (by the route's id, with the route itself to tell a
#: route from another at the same address): finding the prefix takes a match per "/" of the path
_TEMPLATES: dict[int, tuple[object, str]] = {}


def route_of(scope: Scope) -> str:
    """The full template of the route that handled the request, or `unmatched`.

    A route included with a prefix knows only its own part (`/tasks/{task_id}`); the prefix
    is the part of the path before what the route's pattern matched: a literal, since our
    prefixes hold no parameters (so it is the same for every request of a route).
    """
    route = scope.get("route")
    known = _TEMPLATES.get(id(route))
    if known is not None and known[0] is route:
        return known[1]
    found = _template(scope, route)
    if route is not None and found != "unmatched":
        _TEMPLATES[id(route)] = (route, found)
    return found


def _template(scope: Scope, route: object) -> str:
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


class InFlight:
    """How many requests the app is answering now, live streams excepted once they stream: the
    change feed hands its streams their events between requests, so that a create does not
    wait behind the writes to 200 dashboards (service.events.changefeed)."""

    def __init__(self) -> None:
        self.count = 0

    def busy(self) -> bool:
        return self.count > 0


#: The scope key of a request's place in InFlight.
TICKET = "ops.in_flight"


class _Ticket:
    """One request's place in InFlight, given back once (when it ends or starts streaming)."""

    __slots__ = ("held", "in_flight")

    def __init__(self, in_flight: InFlight) -> None:
        self.in_flight = in_flight
        self.held = True
        in_flight.count += 1

    def release(self) -> None:
        if self.held:
            self.held = False
            self.in_flight.count -= 1


def streaming(scope: Scope) -> None:
    """The request has become a live stream: it no longer counts as a request being answered
    (it may last an hour)."""
    ticket = scope.get(TICKET)
    if isinstance(ticket, _Ticket):
        ticket.release()


#: Most request series an app keeps looked up (methods are the clients' to choose)
MAX_SERIES = 1000


class ObservedApp:
    """Wraps an app (the API or the worker) with request metrics and access logs; with
    `in_flight`, counts the requests being answered."""

    def __init__(self, app: ASGIApp, *, name: str, in_flight: InFlight | None = None) -> None:
        self.app = app
        self.name = name
        self.in_flight = in_flight
        #: the request metrics' series by (method, route, status), once looked up: a labels()
        #: call checks and joins its labels under a lock, for every request
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

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

        token, span, failure = None, None, None
        if not trace.get_current_span().get_span_context().is_valid:  # no request span of FastAPI's
            headers = {
                k.decode("latin-1"): v.decode("latin-1")
                for k, v in scope["headers"]
                if k in TRACE_HEADERS
            }
            parent = tracing.context_from_headers(headers) if headers else None
            if tracing.installed():
                span = _server_span(scope, parent)
                token = otel_context.attach(trace.set_span_in_context(span, parent))
            elif parent is not None:
                token = otel_context.attach(parent)
        ticket = None if self.in_flight is None else _Ticket(self.in_flight)
        scope[TICKET] = ticket
        try:
            await self.app(scope, receive, observed_send)
        except BaseException as error:
            failure = error
            raise
        finally:
            if ticket is not None:
                ticket.release()
            route = self._record(scope, status, time.perf_counter() - started)
            if span is not None:
                _end_server_span(span, scope, route, status, failure)
            if token is not None:
                otel_context.detach(token)

    def _record(self, scope: Scope, status: int, took: float) -> str:
        """Count the request and write its access line; its route."""
        method, route = scope["method"], route_of(scope)
        key = (method, route, status)
        series = self._series.get(key)
        if series is None:
            series = (
                metrics.REQUESTS.labels(self.name, method, route, str(status)),
                metrics.REQUEST_SECONDS.labels(self.name, method, route),
            )
            if len(self._series) < MAX_SERIES:
                self._series[key] = series
        series[0].inc()
        series[1].observe(took)
        if status >= 500:
            metrics.REQUEST_ERRORS.labels(self.name, method, route).inc()
        level = logging.DEBUG if route in QUIET else logging.INFO
        if not access.isEnabledFor(level):
            return route
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
        return route


def _server_span(scope: Scope, parent: otel_context.Context | None) -> Span:
    """A request's server span, as FastAPI opens one: named for the method until the route is
    known, with OpenTelemetry's HTTP attributes."""
    method = scope["method"]
    known = method in KNOWN_METHODS
    attributes: dict[str, Any] = {
        "url.scheme": scope.get("scheme", "http"),
        "http.request.method": method if known else "_OTHER",
        "url.path": scope["path"],
    }
    if scope.get("http_version"):
        attributes["network.protocol.version"] = scope["http_version"]
    attributes |= _server(scope)
    if not known:
        attributes["http.request.method_original"] = method
    return tracing.tracer().start_span(
        _span_method(scope), context=parent, kind=SpanKind.SERVER, attributes=attributes
    )


def _server(scope: Scope) -> dict[str, Any]:
    """server.address and server.port: the Host the client asked for, else the socket's."""
    host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), None)
    if host is None:
        address, port = scope.get("server") or (None, None)
    else:
        try:
            url = urlsplit("//" + host)
            address, port = url.hostname, url.port
        except ValueError:
            return {}
        if port is None:
            port = {"http": 80, "https": 443}.get(scope.get("scheme", "http"))
    if address is None:
        return {}
    return {"server.address": address} | ({"server.port": port} if port is not None else {})


def _span_method(scope: Scope) -> str:
    method: str = scope["method"]
    return method if method in KNOWN_METHODS else "HTTP"


def _end_server_span(
    span: Span, scope: Scope, route: str, status: int, failure: BaseException | None
) -> None:
    if route != "unmatched":
        span.set_attribute("http.route", route)
        span.update_name(f"{_span_method(scope)} {route}")
    span.set_attribute("http.response.status_code", status)
    if failure is not None or status >= 500:
        span.set_attribute("error.type", type(failure).__qualname__ if failure else str(status))
        span.set_status(StatusCode.ERROR)
    span.end()
