"""A live list shows what the same list reads back: the list stream's filter (applied to each
change in memory) agrees with GET /tasks's (applied in SQL) on every filter the list takes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from service.api.routes.tasks import ListQuery, filters_of
from service.db.repositories.changes import Notice
from service.usecases.streams import matcher
from tests.fixtures.app import ADMIN, user
from tests.integration.api.support import BASE, create

ALICE = user("alice")
BOB = user("bob")

#: The list's filters as a client writes them (query parameters), each against the same tasks.
FILTERS: list[dict[str, Any]] = [
    {},
    {"taskType": "fail"},
    {"taskType": "sleep", "status": "pending"},
    {"status": "pending,failed"},
    {"requestedBy": "bob"},
    {"queue": "urgent"},
    {"tag": ["nightly"]},
    {"tag": ["nightly", "eu"]},
    {"search": "MARKET"},  # a name and a description, any case
    {"search": "needle"},  # inside params
    {"search": "élodie"},  # non-ASCII inside params
    {"search": "50% off_"},  # LIKE's wildcards taken literally
    {"search": "message"},  # a key of params matches as well as a value
    {"search": "sleep"},  # the task type
    {"search": "nowhere"},
    {"startDate": "2000-01-01T00:00:00Z", "endDate": "2999-01-01T00:00:00Z"},
    {"endDate": "2000-01-01T00:00:00Z"},
    {"tag": ["eu"], "search": "feed", "taskType": "sleep"},
]


async def _tasks(api: httpx.AsyncClient) -> None:
    await create(api, ALICE, name="Marketplace feed", tags=["nightly", "eu"])
    await create(api, ALICE, description="for the market team", tags=["nightly"], queue="urgent")
    await create(api, ALICE, taskType="fail", params={"message": "needle 50% off_now"})
    await create(api, ALICE, taskType="fail", params={"message": "élodie's order"})
    await create(api, BOB, name="feed", tags=["eu"])


@pytest.mark.parametrize("caller", [ALICE, ADMIN], ids=["user", "admin"])
async def test_the_live_filter_agrees_with_the_list(
    api: httpx.AsyncClient, caller: dict[str, str]
) -> None:
    await _tasks(api)
    everything = await api.get(BASE, params={"pageSize": 100}, headers=ADMIN)
    assert everything.status_code == 200, everything.text
    snapshots = everything.json()["items"]
    assert len(snapshots) == 5
    now = datetime.now(UTC)
    for query in FILTERS:
        listed = await api.get(BASE, params={"pageSize": 100, **query}, headers=caller)
        assert listed.status_code == 200, (query, listed.text)
        expected = {t["id"] for t in listed.json()["items"]}

        filters = filters_of(ListQuery.model_validate(query))
        if caller is ALICE:  # what open_list_stream adds for a user
            filters = replace(filters, owner="alice")
        accepts = matcher(filters)
        live = {t["id"] for t in snapshots if accepts(Notice(1, "created", t["id"], t, now))}
        assert live == expected, query
