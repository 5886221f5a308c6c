"""Idempotency-Key as the IETF draft has it: scoped to the caller and the operation."""

from __future__ import annotations

import httpx
import pytest

from service.bootstrap import Resources
from tests.fixtures.app import user
from tests.integration.api.support import BASE, assert_problem, counts

ALICE = user("alice")
BULK_EXPORT = "/api/v1/operations/bulk/export"
NOTHING = {"tasks": 0, "events": 0, "outbox": 0}


def keyed(key: str) -> dict[bytes, bytes]:
    """Alice's headers with the key as UTF-8 bytes (servers read headers as Latin-1)."""
    return {**{k.encode(): v.encode() for k, v in ALICE.items()}, b"Idempotency-Key": key.encode()}


class TestMalformedKeys:
    @pytest.mark.parametrize(
        "key",
        ["", "   ", '""', '"unclosed', 'a"b', "tab\there", "é-accent", '"bad \\q escape"'],
    )
    async def test_an_empty_or_malformed_key_is_400_and_nothing_is_made(
        self, api: httpx.AsyncClient, resources: Resources, key: str
    ) -> None:
        response = await api.post(BASE, json={"taskType": "noop"}, headers=keyed(key))
        problem = assert_problem(response, 400, "malformed-request")
        assert problem["errors"] == [{"field": "Idempotency-Key", "reason": problem["detail"]}]
        assert await counts(resources) == NOTHING

    async def test_an_empty_key_never_replays_another_task(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        """The probe's case: a noop, then an export with the same empty key got the noop."""
        noop = await api.post(BASE, json={"taskType": "noop"}, headers=keyed(""))
        export = await api.post(BULK_EXPORT, json={"entityType": "order"}, headers=keyed(""))
        assert (noop.status_code, export.status_code) == (400, 400)
        assert await counts(resources) == NOTHING


class TestKeysAreScoped:
    async def test_a_quoted_key_is_the_same_key_as_its_bare_form(
        self, api: httpx.AsyncClient
    ) -> None:
        first = await api.post(BASE, json={"taskType": "noop"}, headers=keyed('"abc-1"'))
        again = await api.post(BASE, json={"taskType": "noop"}, headers=keyed("abc-1"))
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json()["id"] == first.json()["id"]
        assert again.json()["idempotencyKey"] == "abc-1"

    async def test_a_replay_says_so(self, api: httpx.AsyncClient) -> None:
        first = await api.post(BASE, json={"taskType": "noop"}, headers=keyed("k1"))
        again = await api.post(BASE, json={"taskType": "noop"}, headers=keyed("k1"))
        assert "Idempotent-Replayed" not in first.headers
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.headers["Location"] == first.headers["Location"]

    async def test_one_key_on_two_operations_makes_two_tasks(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        noop = await api.post(BASE, json={"taskType": "noop"}, headers=keyed("same"))
        export = await api.post(BULK_EXPORT, json={"entityType": "order"}, headers=keyed("same"))
        assert (noop.status_code, export.status_code) == (201, 201)
        assert export.json()["taskType"] == "export"
        assert (await counts(resources))["tasks"] == 2
        repeat = await api.post(BULK_EXPORT, json={"entityType": "order"}, headers=keyed("same"))
        assert (repeat.status_code, repeat.json()["id"]) == (200, export.json()["id"])

    async def test_a_refused_request_does_not_use_up_its_key(self, api: httpx.AsyncClient) -> None:
        bad = await api.post(BASE, json={"taskType": "teleport"}, headers=keyed("retry-me"))
        assert bad.status_code == 422
        good = await api.post(BASE, json={"taskType": "noop"}, headers=keyed("retry-me"))
        assert good.status_code == 201
