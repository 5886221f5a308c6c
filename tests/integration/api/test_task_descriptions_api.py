"""A task's name, description, tags and notification settings: taken at create, checked at the
edge, stored, and shown in every answer and event snapshot."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from service.bootstrap import Resources
from tests.fixtures.app import user
from tests.integration.api.support import BASE, assert_problem, counts, create

ALICE = user("alice")
NOTHING = {"tasks": 0, "events": 0, "outbox": 0}


class TestDescribedTasks:
    async def test_name_description_tags_and_notifications_round_trip(
        self, api: httpx.AsyncClient
    ) -> None:
        made = await create(
            api,
            ALICE,
            name="Nightly product export",
            description="For the marketplace feed.\nRuns at 02:00.",
            tags=["nightly", "feed:marketplace"],
            notificationSettings={
                "onFailure": True,
                "channels": ["inApp", "webhook"],
                "webhookUrl": "https://hooks.example.test/ops",
            },
        )
        shown = (await api.get(f"{BASE}/{made['id']}", headers=ALICE)).json()
        assert shown["name"] == "Nightly product export"
        assert shown["description"].endswith("Runs at 02:00.")
        assert shown["tags"] == ["nightly", "feed:marketplace"]
        settings = shown["notificationSettings"]
        assert settings["onFailure"] is True
        assert settings["onCompletion"] is False
        assert settings["channels"] == ["inApp", "webhook"]
        assert settings["webhookUrl"] == "https://hooks.example.test/ops"
        assert shown["templateVersion"] is None
        assert shown["scheduleId"] is None

    async def test_a_plain_task_has_empty_tags_and_no_settings(
        self, api: httpx.AsyncClient
    ) -> None:
        made = await create(api, ALICE)
        assert made["tags"] == []
        assert made["name"] is None
        assert made["notificationSettings"] is None

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"name": ""}, "name"),
            ({"name": "x" * 201}, "name"),
            ({"name": "line\nbreak"}, "name"),
            ({"description": "x" * 2001}, "description"),
            ({"tags": ["ok", "ok"]}, "tags"),
            ({"tags": ["has space"]}, "tags.0"),
            ({"tags": [f"t{i}" for i in range(21)]}, "tags"),
            ({"notificationSettings": {"channels": ["webhook"]}}, "notificationSettings"),
            ({"notificationSettings": {"channels": []}}, "notificationSettings.channels"),
            ({"notificationSettings": {"channels": ["sms"]}}, "notificationSettings.channels.0"),
            ({"notificationSettings": {"onProgress": [0]}}, "notificationSettings.onProgress.0"),
            (
                {"notificationSettings": {"channels": ["webhook"], "webhookUrl": "ftp://x.test/"}},
                "notificationSettings.webhookUrl",
            ),
            ({"notificationSettings": {"onFailure": "yes"}}, "notificationSettings.onFailure"),
            ({"notificationSettings": {"colour": "red"}}, "notificationSettings.colour"),
        ],
    )
    async def test_bad_descriptions_are_422_naming_the_field(
        self, api: httpx.AsyncClient, resources: Resources, body: dict[str, Any], field: str
    ) -> None:
        response = await api.post(BASE, json={"taskType": "noop", **body}, headers=ALICE)
        problem = assert_problem(response, 422)
        assert problem["errors"][0]["field"].startswith(field)
        assert await counts(resources) == NOTHING
