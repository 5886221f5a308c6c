"""Property tests of the bounded inputs: whatever integer, date, string or nesting a client
sends, the answer is a 2xx or a 4xx problem, never a 500 (issue 9 §2)."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from service.bootstrap import Resources
from tests.fixtures.app import ADMIN, SERVICE, user
from tests.integration.api.support import BASE, PROBLEM, create, start

API = "/api/v1/operations"
JSON = {**user("alice"), "Content-Type": "application/json"}

#: The same app serves every example of a test: its state only grows, which the property (no
#: 500, whatever came before) must survive too.
examples = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: Any character, lone surrogates and NUL included, with JSON's own punctuation more often.
chars = st.characters() | st.characters(categories=["Cs"]) | st.sampled_from('\x00[]{}"\\')
texts = st.text(chars, max_size=40)
#: Integers of any size, and what lenient parsing would take for one.
numbers = st.integers() | st.sampled_from([2**31, 2**53, 2**63, 2**64, -(2**63) - 1, 10**400])
number_like = numbers | st.floats() | st.booleans() | texts | numbers.map(str)
#: UTC offsets as ISO 8601 writes them: whole minutes, less than a day.
zones = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))
#: Any instant; often on the first or last day datetime holds, where an offset overflows it.
moments = (
    st.datetimes(max_value=datetime(1, 1, 1, 23, 59, 59), timezones=zones)
    | st.datetimes(min_value=datetime(9999, 12, 31), timezones=zones)
    | st.datetimes(timezones=zones)
)
instants = moments.map(datetime.isoformat) | texts | numbers.map(str)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | st.floats() | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=25,
)


def raw(value: Any) -> bytes:
    """JSON with non-ASCII escaped, so lone surrogates travel (as \\ud800) like any client's."""
    return json.dumps(value).encode()


def query(url: str, values: dict[str, str]) -> str:
    """`url` with `values` as its query, every character percent-encoded as UTF-8 bytes, lone
    surrogates too (as a client that sends any bytes would: httpx refuses to encode them)."""
    pairs = (
        f"{quote(k)}={quote(v.encode('utf-8', 'surrogatepass'), safe='')}"
        for k, v in values.items()
    )
    return f"{url}?{'&'.join(pairs)}"


def assert_answered(response: httpx.Response) -> None:
    """A success, or a client error told as a problem; never a server error."""
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith(PROBLEM), response.text
        problem = response.json()
        assert problem["status"] == response.status_code
        if response.status_code in (413, 422):
            assert problem["errors"], problem


def nesting(depth: int, kind: str) -> bytes:
    opening, closing = ("[", "]") if kind == "list" else ('{"a":', "}")
    return (opening * depth + "1" + closing * depth).encode()


@pytest.fixture
async def running(api: httpx.AsyncClient, resources: Resources) -> str:
    task = await create(api)
    await start(resources, task["id"])
    return str(task["id"])


known_fields = st.fixed_dictionaries(
    {"taskType": st.just("sleep") | texts},
    optional={
        "params": json_values,
        "fileName": texts,
        "fileSize": number_like,
        "maxRetries": number_like,
        "scheduledAt": instants | number_like,
        "priority": texts,
        "templateId": texts,
        "task_type": texts,
    },
)
task_bodies = st.builds(
    lambda known, unknown: {**unknown, **known},
    known_fields,
    st.dictionaries(texts, json_values, max_size=2),
)


def token(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class TestBodies:
    @examples
    @given(body=task_bodies)
    async def test_any_task_body(self, api: httpx.AsyncClient, body: dict[str, Any]) -> None:
        assert_answered(await api.post(BASE, content=raw(body), headers=JSON))

    @examples
    @given(depth=st.integers(0, 3000), kind=st.sampled_from(["list", "object"]))
    async def test_any_nesting(self, api: httpx.AsyncClient, depth: int, kind: str) -> None:
        body = b'{"taskType": "sleep", "params": {"x": ' + nesting(depth, kind) + b"}}"
        assert_answered(await api.post(BASE, content=body, headers=JSON))
        assert_answered(await api.post(BASE, content=nesting(depth, kind), headers=JSON))

    @examples
    @given(body=st.binary(max_size=300))
    async def test_any_bytes(self, api: httpx.AsyncClient, body: bytes) -> None:
        assert_answered(await api.post(BASE, content=body, headers=JSON))
        assert_answered(await api.post(f"{API}/bulk/export", content=body, headers=JSON))

    @examples
    @given(
        body=st.dictionaries(
            st.sampled_from(
                ["progress", "totalItems", "processedItems", "succeededItems", "failedItems"]
            )
            | texts,
            number_like,
            max_size=4,
        )
    )
    async def test_any_progress_report(
        self, api: httpx.AsyncClient, running: str, body: dict[str, Any]
    ) -> None:
        url = f"{BASE}/{running}/progress"
        headers = {**SERVICE, "Content-Type": "application/json"}
        assert_answered(await api.patch(url, content=raw(body), headers=headers))


class TestQueries:
    @examples
    @given(
        page=number_like,
        page_size=number_like,
        offset=number_like,
        start=instants,
        end=instants,
        search=texts,
    )
    async def test_any_paging_and_dates(
        self,
        api: httpx.AsyncClient,
        page: Any,
        page_size: Any,
        offset: Any,
        start: str,
        end: str,
        search: str,
    ) -> None:
        paging = {"page": str(page), "pageSize": str(page_size), "search": search}
        assert_answered(await api.get(query(BASE, paging), headers=JSON))
        dates = {"startDate": start, "endDate": end}
        assert_answered(await api.get(query(BASE, dates), headers=JSON))
        letters = {"offset": str(offset), "limit": str(page_size)}
        assert_answered(await api.get(query(f"{API}/dead-letters", letters), headers=ADMIN))
        logs = f"{BASE}/00000000-0000-0000-0000-000000000000/logs"
        assert_answered(await api.get(query(logs, {"page": str(page)}), headers=JSON))

    @examples
    @given(moment=instants | texts, task_id=st.uuids().map(str) | texts, junk=texts)
    async def test_any_cursor(
        self, api: httpx.AsyncClient, moment: str, task_id: str, junk: str
    ) -> None:
        for cursor in (token(raw([moment, task_id])), token(junk.encode(errors="replace")), junk):
            assert_answered(await api.get(query(BASE, {"cursor": cursor}), headers=JSON))

    async def test_invalid_utf8_in_a_query_is_answered(self, api: httpx.AsyncClient) -> None:
        """A lone surrogate sent as its UTF-8-like bytes (%ED%A0%80): not UTF-8 at all."""
        for name in ("search", "cursor", "page", "startDate", "tag", "status"):
            assert_answered(await api.get(query(BASE, {name: "\ud800x"}), headers=JSON))


class TestHeaders:
    @examples
    @given(user_id=st.binary(min_size=1, max_size=200), roles=st.binary(max_size=200))
    async def test_any_identity_bytes(
        self, api: httpx.AsyncClient, user_id: bytes, roles: bytes
    ) -> None:
        for value in (user_id, roles):  # what an HTTP server passes on as a header value
            assume(not any(b in value for b in b"\r\n\x00") and value == value.strip())
        headers = [(b"x-user-id", user_id), (b"x-user-roles", roles)]
        assert_answered(await api.get(BASE, headers=headers))
