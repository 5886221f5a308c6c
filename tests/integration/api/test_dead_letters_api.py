"""Dead letters over HTTP on both databases: the list's filters, replay of one and by filter
(dry-run count first, bounded), admins only, bad input a 422 naming the field; a replay writes
an outbox row the relay publishes like any event, marks the dead letter and audits who did it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import uuid4

import httpx
import pytest
from sqlalchemy import select

from service.bootstrap import Resources
from service.clock import utcnow
from service.db.repositories.dead_letters import DeadLetterFilters
from service.db.tables import dead_letter_replays_table, outbox_table
from service.domain.callers import ADMIN_ROLE, Caller
from service.domain.errors import Forbidden
from service.events.base import OutgoingEvent
from service.usecases import dead_letters
from tests.fixtures.app import ADMIN, user, wait_until
from tests.integration.api.support import assert_problem

CREATED = "operations.task.created"
PATH = "/api/v1/operations/dead-letters"


async def letter(
    resources: Resources,
    *,
    event_type: str = CREATED,
    topic: str = "operations.deadletter",
    ago: timedelta = timedelta(0),
    data: Any = None,
) -> dict[str, Any]:
    task_id = str(uuid4())
    event = {
        "id": f"evt-{uuid4().hex[:8]}",
        "specversion": "1.0",
        "type": event_type,
        "source": "common-operations",
        "subject": task_id,
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "data": {"id": task_id, "taskType": "noop"} if data is None else data,
    }
    async with resources.unit() as uow:
        assert await dead_letters.record(uow, event, topic=topic, now=utcnow() - ago)
    return event


async def listed(api: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    answer = await api.get(PATH, params=params, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()
    return items


async def outbox_rows(resources: Resources, topic: str = CREATED) -> list[Any]:
    async with resources.sessionmaker() as session:
        found = await session.execute(
            select(outbox_table).where(outbox_table.c.topic == topic).order_by(outbox_table.c.id)
        )
        return list(found.all())


def field_of(response: httpx.Response) -> list[str]:
    body = assert_problem(response, 422)
    return [e["field"] for e in body["errors"]]


class TestList:
    async def test_filters(self, api: httpx.AsyncClient, resources: Resources) -> None:
        old = await letter(resources, ago=timedelta(days=3))
        other = await letter(resources, event_type="operations.task.retried", topic="elsewhere")
        new = await letter(resources)
        assert [d["eventId"] for d in await listed(api)] == [
            new["id"],
            other["id"],
            old["id"],
        ]
        assert [d["eventId"] for d in await listed(api, topic="elsewhere")] == [other["id"]]
        found = await listed(api, eventType=CREATED)
        assert [d["eventId"] for d in found] == [new["id"], old["id"]]
        assert [d["eventId"] for d in await listed(api, taskId=old["subject"])] == [old["id"]]
        since = (utcnow() - timedelta(days=1)).isoformat()
        assert {d["eventId"] for d in await listed(api, receivedFrom=since)} == {
            new["id"],
            other["id"],
        }
        assert [d["eventId"] for d in await listed(api, receivedTo=since)] == [old["id"]]
        assert await listed(api, replayed="true") == []
        assert found[0]["replayedAt"] is None
        assert found[0]["replayedBy"] is None

    async def test_admins_only_and_bad_filters_named(self, api: httpx.AsyncClient) -> None:
        assert_problem(await api.get(PATH, headers=user()), 403)
        bad = await api.get(PATH, params={"receivedFrom": "yesterday"}, headers=ADMIN)
        assert field_of(bad) == ["receivedFrom"]
        bad = await api.get(PATH, params={"taskId": "x"}, headers=ADMIN)
        assert field_of(bad) == ["taskId"]
        bad = await api.get(PATH, params={"topic": "t" * 129}, headers=ADMIN)
        assert field_of(bad) == ["topic"]
        now = utcnow()
        backwards = {
            "receivedFrom": now.isoformat(),
            "receivedTo": (now - timedelta(1)).isoformat(),
        }
        assert field_of(await api.get(PATH, params=backwards, headers=ADMIN)) == ["receivedTo"]


class TestReplayOne:
    async def test_replay_publishes_through_the_outbox_and_audits(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        heard: list[OutgoingEvent] = []
        bus = api.app.state.resources.bus  # type: ignore[attr-defined]
        bus.subscribe(CREATED, heard.append)
        event = await letter(resources)
        [found] = await listed(api)
        answer = await api.post(f"{PATH}/{found['id']}/replay", headers=ADMIN)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["replayedBy"] == "root"
        assert body["replayedAt"] is not None
        [row] = await outbox_rows(resources)
        assert (row.task_id, row.subject) == (None, event["subject"])
        assert row.payload == event["data"]
        assert row.traceparent == event["traceparent"]

        async def published() -> bool:
            [again] = await outbox_rows(resources)
            return again.published_at is not None

        await wait_until(published)
        [out] = [e for e in heard if e.id == str(row.id)]
        assert (out.topic, out.subject, out.data) == (CREATED, event["subject"], event["data"])
        async with resources.sessionmaker() as session:
            [audit] = (await session.execute(select(dead_letter_replays_table))).all()
        assert (audit.dead_letter_id, audit.outbox_id, audit.actor) == (found["id"], row.id, "root")
        assert [d["id"] for d in await listed(api, replayed="true")] == [found["id"]]

    async def test_refusals(self, api: httpx.AsyncClient, resources: Resources) -> None:
        await letter(resources)
        await letter(resources, event_type="someone.elses.event")
        ours, foreign = sorted(d["id"] for d in await listed(api))
        assert_problem(await api.post(f"{PATH}/{ours}/replay", headers=user()), 403)
        assert_problem(await api.post(f"{PATH}/999999/replay", headers=ADMIN), 404)
        assert_problem(await api.post(f"{PATH}/{foreign}/replay", headers=ADMIN), 409)
        assert field_of(await api.post(f"{PATH}/0/replay", headers=ADMIN)) == ["deadLetterId"]
        assert await outbox_rows(resources) == []
        assert await listed(api, replayed="true") == []


class TestReplayByFilter:
    async def test_dry_run_counts_then_replays(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        for _ in range(3):
            await letter(resources)
        await letter(resources, event_type="operations.task.retried")
        await letter(resources, event_type="someone.elses.event", topic="t2")
        body = {"filter": {"topic": "operations.deadletter"}, "dryRun": True}
        preview = await api.post(f"{PATH}:replay", json=body, headers=ADMIN)
        assert preview.json() == {
            "matched": 4,
            "applied": False,
            "replayed": 0,
            "skipped": 0,
            "limit": 100,
        }
        assert await outbox_rows(resources) == []
        body = {"filter": {"eventType": CREATED}, "limit": 3}
        done = await api.post(f"{PATH}:replay", json=body, headers=ADMIN)
        assert done.json() == {
            "matched": 3,
            "applied": True,
            "replayed": 3,
            "skipped": 0,
            "limit": 3,
        }
        assert len(await outbox_rows(resources)) == 3
        everything = await api.post(f"{PATH}:replay", json={}, headers=ADMIN)
        assert everything.json() == {
            "matched": 5,
            "applied": True,
            "replayed": 4,
            "skipped": 1,
            "limit": 100,
        }
        assert len(await outbox_rows(resources)) == 6
        assert len(await outbox_rows(resources, "operations.task.retried")) == 1
        unreplayed = await listed(api, replayed="false")
        assert [d["eventType"] for d in unreplayed] == ["someone.elses.event"]

    async def test_over_the_limit_is_refused_whole(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        for _ in range(3):
            await letter(resources)
        over = await api.post(f"{PATH}:replay", json={"limit": 2}, headers=ADMIN)
        assert field_of(over) == ["limit"]
        assert await outbox_rows(resources) == []
        assert await listed(api, replayed="true") == []

    async def test_admins_only_and_bad_input_named(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        await letter(resources)
        assert_problem(await api.post(f"{PATH}:replay", json={}, headers=user()), 403)
        cases = [
            ({"limit": 0}, "limit"),
            ({"limit": 1001}, "limit"),
            ({"limit": "3"}, "limit"),
            ({"dryRun": "yes"}, "dryRun"),
            ({"filter": {"receivedFrom": "yesterday"}}, "filter.receivedFrom"),
            ({"filter": {"colour": "red"}}, "filter.colour"),
            ({"filter": None}, "filter"),
            ({"everything": True}, "everything"),
        ]
        for body, name in cases:
            answer = await api.post(f"{PATH}:replay", json=body, headers=ADMIN)
            assert field_of(answer) == [name], (body, answer.text)
        assert await outbox_rows(resources) == []


class TestUseCase:
    async def test_a_replay_is_one_transaction(self, resources: Resources) -> None:
        """Outbox row, mark and audit commit together: a unit that fails leaves none of them."""
        await letter(resources)
        admin = Caller("root", frozenset({ADMIN_ROLE}))
        async with resources.unit() as uow:
            [found] = await dead_letters.latest(uow, admin, limit=10, offset=0)

        class Boom(Exception):
            pass

        async def replay_then_fail() -> None:
            async with resources.unit() as uow:
                await dead_letters.replay_one(uow, admin, found.id, now=utcnow())
                raise Boom

        with pytest.raises(Boom):
            await replay_then_fail()
        assert await outbox_rows(resources) == []
        async with resources.unit() as uow:
            [again] = await dead_letters.latest(uow, admin, limit=10, offset=0)
            assert again.replayed_at is None
            replayed = await dead_letters.replay_one(uow, admin, found.id, now=utcnow())
        assert replayed.replayed_by == "root"
        assert len(await outbox_rows(resources)) == 1

    async def test_users_may_neither_read_nor_replay(self, resources: Resources) -> None:
        await letter(resources)
        alice = Caller("alice")
        filters = DeadLetterFilters()
        async with resources.unit() as uow:
            with pytest.raises(Forbidden):
                await dead_letters.count(uow, alice, filters)
            with pytest.raises(Forbidden):
                await dead_letters.replay_matching(
                    uow, alice, filters, limit=10, dry_run=True, now=utcnow()
                )
            with pytest.raises(Forbidden):
                await dead_letters.replay_one(uow, alice, 1, now=utcnow())
