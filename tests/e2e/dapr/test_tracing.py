"""One trace from the API's request to the worker's run, through real sidecars and Redis.

The apps run as processes here, so their spans reach the test the way they reach a
collector in production: the SDK's OTLP/HTTP exporter (OPS_OTEL_ENABLED) posts them to a
small OTLP receiver in the test, which decodes them with the OTLP protobuf definitions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.e2e.dapr.conftest import Stack, get_json
from tests.e2e.dapr.test_delivery import create, wait_status
from tests.fixtures.app import wait_until
from tests.fixtures.database import daprlocal


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]


@dataclass
class Collector:
    """An OTLP/HTTP traces endpoint that keeps what it is sent."""

    port: int
    spans: list[ReceivedSpan] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/traces"

    async def receive(self, request: web.Request) -> web.Response:
        export = ExportTraceServiceRequest.FromString(await request.read())
        for resource in export.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource.resource.attributes}
            for scope in resource.scope_spans:
                for span in scope.spans:
                    self.spans.append(
                        ReceivedSpan(
                            attributes.get("ops.process", ""),
                            span.name,
                            span.trace_id.hex(),
                            span.span_id.hex(),
                            span.parent_span_id.hex(),
                            {a.key: _value(a.value) for a in span.attributes},
                        )
                    )
        body = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=body, content_type="application/x-protobuf")


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


@pytest.fixture
async def collector() -> AsyncIterator[Collector]:
    received = Collector(daprlocal.free_port())
    app = web.Application()
    app.router.add_post("/v1/traces", received.receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", received.port)
    await site.start()
    try:
        yield received
    finally:
        await runner.cleanup()


@pytest.fixture
def stack_env(collector: Collector) -> dict[str, str]:
    return {
        "OPS_OTEL_ENABLED": "true",
        "OPS_OTEL_ENDPOINT": collector.url,
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # export within a tenth of a second
    }


async def test_a_create_and_its_run_share_one_trace(stack: Stack, collector: Collector) -> None:
    subscriber = stack.add_subscriber([stack.topic("created")])
    stack.add_worker()
    task = await create(stack, {"taskType": "noop"})
    await wait_status(stack, task["id"], "completed")

    async def run_span() -> ReceivedSpan | None:
        runs = [s for s in collector.spans if s.attributes.get("ops.task_id") == task["id"]]
        return runs[0] if runs else None

    run = await wait_until(run_span, timeout=20)
    assert run.name == "run noop"
    assert run.service == "worker"
    created = [
        s
        for s in collector.spans
        if s.service == "api" and s.name == "POST /api/v1/operations/tasks"
    ]
    assert len(created) == 1, [(s.service, s.name) for s in collector.spans]
    assert run.trace_id == created[0].trace_id
    in_api = {s.span_id for s in collector.spans if s.trace_id == run.trace_id}
    assert run.parent_id in in_api  # a child of a span of the create's request

    async def delivered() -> list[dict[str, Any]] | None:
        body = await get_json(subscriber.url + "/received")
        mine = [e for e in body["events"] if e.get("subject") == task["id"]]
        return mine or None

    (event,) = await wait_until(delivered, timeout=20)
    assert event["traceparent"].split("-")[1] == run.trace_id  # the CloudEvent's extension
    in_trace = {(s.service, s.name) for s in collector.spans if s.trace_id == run.trace_id}
    # the use case, and the delivery to the worker (daprd passes the event's traceparent on)
    assert {
        ("api", "submissions.submit_one"),
        ("worker", "POST /events/routed/{task_type}"),
    } <= in_trace
