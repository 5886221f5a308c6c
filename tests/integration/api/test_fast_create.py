"""POST /tasks answered by its fast path (service.api.fast_create) is answered as the route
answers it: the same status, headers and body; every request the path does not take, or
cannot read, gets the route's own answer, word for word."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from service.api.fast_create import FastCreate
from tests.fixtures.app import SERVICE, user
from tests.integration.api.support import BASE

ALICE = user("alice")
#: FastAPI ignores a query this route does not declare; the fast path leaves it to the route
VIA_ROUTE = f"{BASE}?via=route"
#: what differs between two creates of the same task: its id, its times
FRESH = {"id", "createdAt", "updatedAt", "availableAt"}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"max_body_bytes": 2048, "params_max_bytes": 1024}


def fast_path(app: FastAPI) -> FastCreate:
    layer: Any = app.middleware_stack
    while not isinstance(layer, FastCreate):
        layer = layer.app
    return layer


def comparable(response: httpx.Response) -> tuple[int, dict[str, str], Any]:
    """A response without what names the task it made (its id, in the body and the Location)."""
    headers = {k: v for k, v in response.headers.items() if k not in {"location", "content-length"}}
    body = response.json()
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in FRESH}
    return response.status_code, headers, body


async def both(
    api: httpx.AsyncClient, *, content: bytes, headers: dict[str, str]
) -> tuple[httpx.Response, httpx.Response, int]:
    """The request sent to the plain path and to the route; how many the fast path answered."""
    app: FastAPI = api.app  # type: ignore[attr-defined]
    await api.get("/health/live")  # builds the middleware stack
    before = fast_path(app).answered
    plain = await api.post(BASE, content=content, headers=headers)
    routed = await api.post(VIA_ROUTE, content=content, headers=headers)
    return plain, routed, fast_path(app).answered - before


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    "body",
    [
        b'{"taskType": "noop"}',
        b'{"taskType": "sleep", "params": {"seconds": 0}, "priority": "high", "name": "Nap",'
        b' "tags": ["a", "b"], "entityType": "product", "maxRetries": 2}',
        b'{"task_type": "noop", "scheduled_at": "2031-01-02T03:04:05+01:00"}',
    ],
)
async def test_a_plain_create_is_answered_as_the_route_answers_it(
    api: httpx.AsyncClient, body: bytes
) -> None:
    plain, routed, answered = await both(api, content=body, headers=ALICE | JSON)
    assert answered == 1  # the first, not the one with a query
    assert plain.status_code == 201, plain.text
    assert comparable(plain) == comparable(routed)
    assert plain.headers["location"] == f"{BASE}/{plain.json()['id']}"
    assert int(plain.headers["content-length"]) == len(plain.content)
    task = await api.get(f"{BASE}/{plain.json()['id']}", headers=ALICE)
    assert task.status_code == 200
    stored, answered_body = task.json(), plain.json()
    shared = stored.keys() & answered_body.keys()
    assert {k: stored[k] for k in shared} == {k: answered_body[k] for k in shared}
    assert len(shared) > 20


async def test_a_service_caller_and_a_trace_are_read_as_the_route_reads_them(
    api: httpx.AsyncClient,
) -> None:
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    headers = SERVICE | JSON | {"traceparent": traceparent}
    plain, routed, answered = await both(api, content=b'{"taskType": "noop"}', headers=headers)
    assert answered == 1
    assert comparable(plain) == comparable(routed)


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b'{"taskType": "noop"', ALICE | JSON),  # not JSON
        (b"[" * 100 + b"]" * 100, ALICE | JSON),  # too deep
        (b'{"taskType": "noop", "unknown": 1}', ALICE | JSON),  # a field the model refuses
        (b'{"taskType": "noop", "params": {"x": "' + b"y" * 3000 + b'"}}', ALICE | JSON),  # 413
        (b"", ALICE | JSON),  # no body
        (b'{"taskType": "noop"}', JSON),  # no caller
        (b'{"taskType": "noop"}', ALICE | JSON | {"X-User-Roles": "r" * 5000}),  # roles too long
        (b'{"taskType": "noop"}', ALICE | JSON | {"traceparent": "0" * 65}),  # trace too long
        (b'{"taskType": "noop"}', ALICE | {"Content-Type": "text/plain"}),  # not JSON by type
        (b'{"taskType": "noop"}', {"X-Service-Token": "wrong"} | JSON),  # a bad token
        (b'{"taskType": "no-such-type"}', ALICE | JSON),  # the catalog refuses it
        (b'{"taskType": "sleep", "params": {"seconds": -1}}', ALICE | JSON),  # bad params
    ],
)
async def test_a_refused_create_gets_the_routes_own_answer(
    api: httpx.AsyncClient, body: bytes, headers: dict[str, str]
) -> None:
    plain, routed, _ = await both(api, content=body, headers=headers)
    assert plain.status_code >= 400
    assert comparable(plain) == comparable(routed)
    listed = await api.get(BASE, headers=user("root", "admin"))
    assert listed.json()["items"] == []  # nothing was stored by either


async def test_an_idempotency_key_goes_to_the_route(api: httpx.AsyncClient) -> None:
    headers = ALICE | JSON | {"Idempotency-Key": "key-1"}
    plain, again, answered = await both(api, content=b'{"taskType": "noop"}', headers=headers)
    assert answered == 0
    assert (plain.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == plain.json()["id"]


async def test_a_create_of_the_fast_path_is_counted_under_its_route(
    api: httpx.AsyncClient,
) -> None:
    def created(metrics: str) -> float:
        for line in metrics.splitlines():
            if (
                line.startswith("ops_http_requests_total{")
                and 'method="POST"' in line
                and f'route="{BASE}"' in line
                and 'status="201"' in line
            ):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = created((await api.get("/metrics")).text)
    plain, routed, answered = await both(api, content=b'{"taskType": "noop"}', headers=ALICE | JSON)
    assert (plain.status_code, routed.status_code, answered) == (201, 201, 1)
    assert created((await api.get("/metrics")).text) == before + 2
