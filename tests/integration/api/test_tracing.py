"""One trace from the request that creates a task to the handler's span that runs it, in the
embedded mode (API → in-process bus → worker), with the SDK's in-memory exporter."""

from __future__ import annotations

import json
import warnings
from typing import Any
from uuid import UUID

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import select

from service.bootstrap import Resources
from service.db.tables import outbox_table
from service.events.cloudevents import to_structured_body
from service.events.relay import to_event
from tests.fixtures.app import user, wait_until
from tests.fixtures.tracing import named, spans, trace_id

__all__ = ["spans"]

BASE = "/api/v1/operations/tasks"
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"


@pytest.fixture
def settings_overrides(spans: InMemorySpanExporter) -> dict[str, Any]:
    """Tracing on; the in-memory exporter's provider is installed first, so the app keeps it
    rather than installing its OTLP one."""
    return {"otel_enabled": True}


async def run_task(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    created = await client.post(
        BASE, json={"taskType": "sleep", "params": {"seconds": 0.01}}, headers=headers
    )
    assert created.status_code == 201, created.text
    task_id: str = created.json()["id"]

    async def completed() -> bool:
        body = (await client.get(f"{BASE}/{task_id}", headers=user())).json()
        return bool(body["status"] == "completed")

    await wait_until(completed)
    return task_id


async def wait_for_run_span(exporter: InMemorySpanExporter, task_id: str) -> Any:
    async def found() -> Any:
        runs = []
        for span in named(exporter, "run "):
            assert span.attributes is not None
            if span.attributes["ops.task_id"] == task_id:
                runs.append(span)
        return runs[0] if runs else None

    return await wait_until(found)


class TestOneTrace:
    async def test_the_create_and_its_run_share_one_trace(
        self, embedded: httpx.AsyncClient, spans: InMemorySpanExporter
    ) -> None:
        task_id = await run_task(embedded, user())
        run = await wait_for_run_span(spans, task_id)
        posts = [s for s in named(spans, f"POST {BASE}") if s.kind is SpanKind.SERVER]
        assert len(posts) == 1, [s.name for s in spans.get_finished_spans()]
        request = posts[0]
        assert trace_id(run) == trace_id(request)
        assert run.name == "run sleep"
        assert run.kind is SpanKind.CONSUMER
        assert run.attributes["ops.ending"] == "completed"
        # the run is a child of a span inside the create's request
        in_request = {s.context.span_id for s in spans.get_finished_spans() if s.context}
        assert run.parent is not None
        assert run.parent.span_id in in_request
        usecase = named(spans, "submissions.submit_one")
        assert [trace_id(s) for s in usecase] == [trace_id(request)]

    async def test_the_callers_traceparent_goes_to_the_outbox_the_cloudevent_and_the_run(
        self, embedded: httpx.AsyncClient, spans: InMemorySpanExporter
    ) -> None:
        task_id = await run_task(embedded, {**user(), "traceparent": CALLER})
        run = await wait_for_run_span(spans, task_id)
        assert trace_id(run) == CALLER_TRACE
        resources: Resources = embedded.app.state.resources  # type: ignore[attr-defined]
        async with resources.sessionmaker() as session:
            rows = (
                await session.execute(
                    select(outbox_table)
                    .where(outbox_table.c.task_id == UUID(task_id))
                    .order_by(outbox_table.c.id)
                )
            ).all()
        assert len(rows) >= 3  # created, started, (progress,) completed
        assert {r.traceparent.split("-")[1] for r in rows} == {CALLER_TRACE}
        assert rows[0].traceparent != CALLER  # the request's own span, a child of the caller's
        with warnings.catch_warnings():  # the cloudevents SDK's to_structured is deprecated
            warnings.simplefilter("ignore", DeprecationWarning)
            body = json.loads(to_structured_body(to_event(rows[0])))
        assert body["traceparent"] == rows[0].traceparent


async def test_without_tracing_the_callers_trace_is_still_carried_to_the_outbox(
    api: httpx.AsyncClient,
) -> None:
    """Tracing off (no SDK span is recorded by this app's settings): the caller's traceparent
    is stored as it came, so a traced consumer continues the caller's trace."""
    created = await api.post(
        BASE, json={"taskType": "sleep"}, headers={**user(), "traceparent": CALLER}
    )
    assert created.status_code == 201
    resources: Resources = api.app.state.resources  # type: ignore[attr-defined]
    async with resources.sessionmaker() as session:
        row = (await session.execute(select(outbox_table))).one()
    assert row.traceparent.split("-")[1] == CALLER_TRACE
