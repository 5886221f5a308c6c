"""The notification-batch task type end to end: recipients listed or uploaded as CSV, the
template rendered per row, sent in batches on its channels, counts, and the error report."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from service.bootstrap import Resources
from service.db.tables import outbox_table
from service.domain.events import NOTIFICATION_REQUESTED
from tests.fixtures.app import user
from tests.fixtures.s3 import transfer
from tests.integration.bulk.support import ALICE, TASKS, confirm_upload, download, finished

MESSAGES = "/api/v1/operations/messages"
TEMPLATE = {"title": "Hello {name}", "body": "Order {order} has shipped."}


async def inbox(client: httpx.AsyncClient, who: str) -> list[dict[str, Any]]:
    answer = await client.get(MESSAGES, params={"pageSize": 100}, headers=user(who))
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def report_rows(content: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(content.decode())))


class TestListed:
    async def test_rendered_per_recipient_in_batches_with_a_report(
        self, embedded: httpx.AsyncClient, resources: Resources
    ) -> None:
        recipients = [
            {"userId": "bob", "name": "Bob", "order": "A-1"},
            {"userId": "carol", "name": "Carol", "order": "A-2"},
            {"userId": "dave", "name": "Dave"},  # no order: cannot be rendered
            {"name": "Nobody", "order": "A-4"},  # no userId
            {"userId": "erin", "name": "Erin", "order": "A-5"},
        ]
        params = {
            **TEMPLATE,
            "recipients": recipients,
            "channels": ["inApp", "event"],
            "templateKey": "shipping",
            "batchSize": 2,
        }
        created = await embedded.post(
            TASKS, json={"taskType": "notification-batch", "params": params}, headers=ALICE
        )
        assert created.status_code == 201, created.text
        task = await finished(embedded, created.json()["id"])
        assert task["status"] == "completed", task
        assert (task["processedItems"], task["succeededItems"], task["failedItems"]) == (5, 3, 2)
        assert task["totalItems"] == 5
        assert task["result"]["sent"] == 3

        [bob] = await inbox(embedded, "bob")
        assert (bob["title"], bob["body"], bob["kind"]) == (
            "Hello Bob",
            "Order A-1 has shipped.",
            "message",
        )
        assert bob["taskId"] == task["id"]
        assert await inbox(embedded, "dave") == []

        async with resources.sessionmaker() as session:
            events = (
                await session.execute(
                    select(outbox_table.c.payload).where(
                        outbox_table.c.topic == NOTIFICATION_REQUESTED
                    )
                )
            ).scalars()
            sent = sorted((e["recipients"][0], e["title"], e["templateKey"]) for e in events)
        assert sent == [
            ("bob", "Hello Bob", "shipping"),
            ("carol", "Hello Carol", "shipping"),
            ("erin", "Hello Erin", "shipping"),
        ]

        report = report_rows(await download(embedded, task["id"], "errorReport"))
        assert [(r["row"], r["column"]) for r in report] == [("3", "order"), ("4", "userId")]
        assert "order" in report[0]["message"]

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({**TEMPLATE}, "params.recipients"),
            ({"title": "x", "recipients": [{"userId": "a"}]}, "params.body"),
            ({**TEMPLATE, "recipients": [{"userId": "a"}], "channels": ["webhook"]}, "params"),
            (
                {
                    **TEMPLATE,
                    "recipients": [{"userId": "a"}],
                    "channels": ["webhook"],
                    "webhookUrl": "http://169.254.169.254/latest",
                },
                "params.webhookUrl",
            ),
        ],
    )
    async def test_refused_at_create(
        self, embedded: httpx.AsyncClient, params: dict[str, Any], field: str
    ) -> None:
        created = await embedded.post(
            TASKS, json={"taskType": "notification-batch", "params": params}, headers=ALICE
        )
        assert created.status_code == 422, created.text
        assert created.json()["errors"][0]["field"] == field


class TestUploaded:
    async def test_recipients_from_a_csv_file(self, embedded: httpx.AsyncClient) -> None:
        content = b"userId,name,order\nbob,Bob,B-1\n,Nobody,B-2\ncarol,Carol,B-3\n"
        body = {"taskType": "notification-batch", "fileName": "people.csv", "params": TEMPLATE}
        created = await embedded.post(TASKS, json=body, headers=ALICE)
        assert created.status_code == 201, created.text
        made = created.json()
        assert made["status"] == "waiting"
        put = await transfer(
            embedded, "PUT", made["uploadUrl"], content=content, headers=made["uploadHeaders"]
        )
        assert put.status_code == 200, put.text
        await confirm_upload(embedded, made)
        task = await finished(embedded, made["id"])
        assert task["status"] == "completed", task
        assert (task["succeededItems"], task["failedItems"]) == (2, 1)
        assert [m["body"] for m in await inbox(embedded, "carol")] == ["Order B-3 has shipped."]
        report = report_rows(await download(embedded, task["id"], "errorReport"))
        assert [(r["row"], r["column"]) for r in report] == [("2", "userId")]

    async def test_a_file_without_a_user_id_column_fails(self, embedded: httpx.AsyncClient) -> None:
        body = {"taskType": "notification-batch", "fileName": "people.csv", "params": TEMPLATE}
        made = (await embedded.post(TASKS, json=body, headers=ALICE)).json()
        await transfer(
            embedded,
            "PUT",
            made["uploadUrl"],
            content=b"name\nBob\n",
            headers=made["uploadHeaders"],
        )
        await confirm_upload(embedded, made)
        task = await finished(embedded, made["id"])
        assert task["status"] == "failed"
        assert "userId" in task["errorMessage"]
