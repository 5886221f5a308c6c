"""The task-type catalog: listed at /task-types, and every create is checked against it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from service.bootstrap import Resources
from tests.fixtures.app import ADMIN, SERVICE, user
from tests.integration.api.support import BASE, assert_problem, counts

ALICE = user("alice")
MALLORY = user("mallory")
TYPES = "/api/v1/operations/task-types"
NOTHING = {"tasks": 0, "events": 0, "outbox": 0}


def field_of(response: httpx.Response) -> str:
    problem = assert_problem(response, 422)
    return str(problem["errors"][0]["field"])


class TestTheCatalogIsListed:
    async def test_every_type_with_its_params_schema(self, api: httpx.AsyncClient) -> None:
        response = await api.get(TYPES, headers=ALICE)
        assert response.status_code == 200
        types = {t["taskType"]: t for t in response.json()}
        assert set(types) == {
            "export",
            "fail",
            "import",
            "maintenance",
            "noop",
            "notification-batch",
            "sleep",
        }
        sleep = types["sleep"]
        assert sleep["paramsSchema"]["properties"]["seconds"]["maximum"] == 24 * 3600
        assert sleep["paramsSchema"]["additionalProperties"] is False
        assert (sleep["entityTypes"], sleep["entityTypeRequired"]) == (None, False)
        assert types["import"]["entityTypes"] == ["customer", "inventory", "order", "product"]
        assert types["import"]["queue"] == "bulk"
        assert types["import"]["needsFile"] is True
        assert "zipfile.BadZipFile" in types["import"]["nonRetryableErrors"]
        assert "mode" in types["import"]["paramsSchema"]["properties"]
        assert types["noop"]["executionTimeoutSeconds"] == 3600
        assert types["noop"]["heartbeatTimeoutSeconds"] == 30

    async def test_allowed_says_what_the_caller_may_create(self, api: httpx.AsyncClient) -> None:
        def allowed(response: httpx.Response) -> dict[str, bool]:
            return {t["taskType"]: t["allowed"] for t in response.json()}

        plain = allowed(await api.get(TYPES, headers=ALICE))
        assert plain["maintenance"] is False
        assert plain["import"] is True
        assert allowed(await api.get(TYPES, headers=ADMIN))["maintenance"] is True
        assert allowed(await api.get(TYPES, headers=SERVICE))["maintenance"] is True

    async def test_one_type_and_an_unknown_one(self, api: httpx.AsyncClient) -> None:
        one = await api.get(f"{TYPES}/maintenance", headers=ALICE)
        assert one.status_code == 200
        assert one.json()["requiredRole"] == "admin"
        assert "cleanup-old-tasks" in one.json()["entityTypes"]
        assert_problem(await api.get(f"{TYPES}/teleport", headers=ALICE), 404)

    async def test_the_catalog_needs_an_identity(self, api: httpx.AsyncClient) -> None:
        assert_problem(await api.get(TYPES), 401)

    @pytest.mark.parametrize(
        "settings_overrides",
        [{"task_types": {"sleep": {"executionTimeoutSeconds": 5, "maxRetries": 7}}}],
    )
    async def test_operator_limits_show_and_apply(
        self, api: httpx.AsyncClient, settings_overrides: dict[str, Any]
    ) -> None:
        sleep = (await api.get(f"{TYPES}/sleep", headers=ALICE)).json()
        assert (sleep["executionTimeoutSeconds"], sleep["maxRetries"]) == (5, 7)
        task = await api.post(BASE, json={"taskType": "sleep"}, headers=ALICE)
        assert task.json()["maxRetries"] == 7


class TestCreateIsChecked:
    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"taskType": "teleport"}, "taskType"),
            ({"taskType": "sleep", "params": {"seconds": -5}}, "params.seconds"),
            ({"taskType": "sleep", "params": {"seconds": "5"}}, "params.seconds"),
            ({"taskType": "sleep", "params": {"seconds": True}}, "params.seconds"),
            ({"taskType": "sleep", "params": {"seconds": 86401}}, "params.seconds"),
            ({"taskType": "sleep", "params": {"secs": 1}}, "params.secs"),
            ({"taskType": "noop", "params": {"anything": 1}}, "params.anything"),
            ({"taskType": "fail", "params": {"untilAttempt": "3"}}, "params.untilAttempt"),
            ({"taskType": "fail", "params": {"permanent": "yes"}}, "params.permanent"),
            ({"taskType": "export", "entityType": "planet"}, "entityType"),
            ({"taskType": "export"}, "entityType"),
            (
                {"taskType": "export", "entityType": "order", "params": {"format": "pdf"}},
                "params.format",
            ),
            (
                {"taskType": "export", "entityType": "order", "params": {"batchSize": "10"}},
                "params.batchSize",
            ),
        ],
    )
    async def test_a_bad_create_is_422_naming_the_field_and_writes_nothing(
        self, api: httpx.AsyncClient, resources: Resources, body: dict[str, Any], field: str
    ) -> None:
        response = await api.post(BASE, json=body, headers=ALICE)
        assert field_of(response) == field
        assert await counts(resources) == NOTHING

    async def test_an_unknown_type_names_the_known_ones(self, api: httpx.AsyncClient) -> None:
        response = await api.post(BASE, json={"taskType": "teleport"}, headers=ALICE)
        problem = assert_problem(response, 422)
        assert (
            "known: export, fail, import, maintenance, noop, notification-batch, sleep"
            in (problem["detail"])
        )

    async def test_maintenance_is_for_admins_and_services(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        body = {"taskType": "maintenance", "entityType": "cleanup-old-tasks"}
        refused = await api.post(BASE, json=body, headers=MALLORY)
        problem = assert_problem(refused, 403)
        assert "admin" in problem["detail"]
        # the role is checked first: a plain user learns nothing of the type's rules
        assert_problem(
            await api.post(
                BASE, json={"taskType": "maintenance", "entityType": "x"}, headers=MALLORY
            ),
            403,
        )
        assert await counts(resources) == NOTHING
        assert (await api.post(BASE, json=body, headers=ADMIN)).status_code == 201
        as_service = await api.post(BASE, json=body, headers=SERVICE)
        assert as_service.status_code == 201
        assert as_service.json()["queue"] == "default"

    async def test_maintenance_names_a_job(self, api: httpx.AsyncClient) -> None:
        for entity in ("index-rebuild", None):
            body = {"taskType": "maintenance", "entityType": entity}
            assert field_of(await api.post(BASE, json=body, headers=ADMIN)) == "entityType"

    async def test_bulk_spellings_are_checked_by_the_same_catalog(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        export = await api.post(
            "/api/v1/operations/bulk/export",
            json={"entityType": "order", "params": {"gzip": "yes"}},
            headers=ALICE,
        )
        assert field_of(export) == "params.gzip"
        assert await counts(resources) == NOTHING

    async def test_defaults_come_from_the_type(self, api: httpx.AsyncClient) -> None:
        export = await api.post(
            BASE, json={"taskType": "export", "entityType": "order"}, headers=ALICE
        )
        assert (export.json()["queue"], export.json()["priority"]) == ("bulk", "normal")
        urgent = await api.post(
            BASE,
            json={"taskType": "export", "entityType": "order", "priority": "urgent"},
            headers=ALICE,
        )
        assert urgent.json()["queue"] == "urgent"
