"""OpenTelemetry tracing: off by default, an OTLP exporter when OPS_OTEL_ENABLED is set.

The W3C `traceparent` is the thread through the system: a request's span (or the caller's
context when tracing is off) is stored on the task and its outbox rows, goes out as the
CloudEvent's `traceparent` extension, and the worker starts each run's span as a child of
it, so a create and its runs share one trace id.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, ParamSpec, TypeVar

from opentelemetry import context as otel_context, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from service.config import Settings

P = ParamSpec("P")
R = TypeVar("R")

TRACER_NAME = "common-operations"
_propagator = TraceContextTextMapPropagator()


def configure_tracing(settings: Settings, process_name: str) -> None:
    """Install an SDK tracer provider exporting over OTLP/HTTP, when OPS_OTEL_ENABLED is set.

    Once per process: a provider already installed (by an earlier app of this process, or a
    test's in-memory exporter) is kept. Off, the API's no-op tracer still carries an incoming
    traceparent through to the outbox.
    """
    if not settings.otel_enabled:
        return
    from opentelemetry.sdk.trace import TracerProvider  # only tracing pays for the SDK

    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create(
        {"service.name": settings.otel_service_name, "ops.process": process_name}
    )
    provider = TracerProvider(resource=resource)
    exporter = OTLPSpanExporter(endpoint=settings.otel_endpoint or None)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)


def installed() -> bool:
    """Whether a tracer provider is installed (OPS_OTEL_ENABLED, or a test's), not the API's
    no-op one: an app without spans of its own (the worker's) then opens its requests' spans."""
    provider = trace.get_tracer_provider()
    return not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)


@functools.cache
def tracer() -> trace.Tracer:
    """The service's tracer: a proxy that stays a no-op until a provider is installed, then
    hands over to it. One for the process: `trace.get_tracer` reads the environment and makes
    a new proxy on every call, a cost on every use case of every request."""
    return trace.get_tracer(TRACER_NAME)


def context_from(traceparent: str | None) -> otel_context.Context | None:
    """The trace context a W3C traceparent names, or None when it is absent or malformed."""
    if not traceparent:
        return None
    extracted = _propagator.extract({"traceparent": traceparent})
    span_context = trace.get_current_span(extracted).get_span_context()
    return extracted if span_context.is_valid else None


def context_from_headers(headers: Mapping[str, str]) -> otel_context.Context:
    """The trace context of an incoming request's headers (traceparent, tracestate)."""
    return _propagator.extract(dict(headers))


def current_traceparent() -> str | None:
    """The current span's W3C traceparent (the caller's, carried through, when tracing is
    off), or None outside any trace."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent")


def trace_id_of(span: Span | None = None) -> str | None:
    """The current (or given) span's trace id as 32 hex digits, None outside a trace."""
    span_context = (span or trace.get_current_span()).get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else None


@contextlib.contextmanager
def span(
    name: str,
    *,
    parent: otel_context.Context | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Span]:
    """A span, current for the block; an exception marks it as an error and goes on."""
    with tracer().start_as_current_span(
        name, context=parent, kind=kind, attributes=dict(attributes or {})
    ) as current:
        yield current


def traced(name: str) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """A use case's span: decorates an async function with a span named `name`. Without a
    tracer provider there is none to open: the no-op span would only carry the current context
    on, which stays current anyway (and costs ~10 µs a call, on every create)."""

    def decorate(function: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(function)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            if not installed():
                return await function(*args, **kwargs)
            with tracer().start_as_current_span(name, attributes={"ops.usecase": name}):
                return await function(*args, **kwargs)

        return wrapper

    return decorate


def mark_error(current: Span, message: str) -> None:
    current.set_status(Status(StatusCode.ERROR, message))
