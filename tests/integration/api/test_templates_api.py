"""Templates: admins manage them (each update a new version), users make tasks from them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from service.bootstrap import Resources
from tests.fixtures.app import ADMIN, SERVICE, user
from tests.integration.api.support import BASE, assert_problem, counts

API = "/api/v1/operations"
TEMPLATES = f"{API}/templates"
FROM = f"{BASE}/from-template"
ALICE = user("alice")
BOB = user("bob")
SHIPPED = {"nightly-product-export", "customer-import-upsert", "cleanup-old-tasks"}


def sleep_template(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "Short nap",
        "description": "Sleeps a little",
        "category": "diagnostics",
        "taskType": "sleep",
        "params": {"seconds": 0.5},
        "optionalFields": ["seconds"],
        "tags": ["nap", "demo"],
        "priority": "high",
        "maxRetries": 2,
        "notificationSettings": {"onCompletion": True},
        **overrides,
    }


def export_template(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "Product export",
        "category": "export",
        "taskType": "export",
        "entityType": "product",
        "params": {"gzip": True},
        "requiredFields": ["format", "fileName"],
        "optionalFields": ["columns"],
        "tags": ["products"],
        **overrides,
    }


async def make(api: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await api.post(TEMPLATES, json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    assert response.headers["Location"].endswith(response.json()["id"])
    made: dict[str, Any] = response.json()
    return made


def fields_of(response: httpx.Response, status: int = 422) -> list[str]:
    return [e["field"] for e in assert_problem(response, status)["errors"]]


class TestManaging:
    async def test_an_admin_creates_and_anyone_reads(self, api: httpx.AsyncClient) -> None:
        made = await make(api, sleep_template())
        assert made["version"] == made["latestVersion"] == 1
        assert made["active"] is True
        assert made["taskType"] == "sleep"
        assert made["priority"] == "high"
        assert made["tags"] == ["nap", "demo"]
        assert made["notificationSettings"]["onCompletion"] is True
        assert made["createdBy"] == "root"
        schema = made["paramsSchema"]
        assert set(schema["properties"]) == {"seconds"}
        assert schema["properties"]["seconds"]["default"] == 0.5
        shown = await api.get(f"{TEMPLATES}/{made['id']}", headers=ALICE)
        assert shown.status_code == 200
        assert shown.json()["name"] == "Short nap"
        assert shown.json()["allowed"] is True

    async def test_the_narrowed_schema_marks_required_fields(self, api: httpx.AsyncClient) -> None:
        made = await make(api, export_template())
        schema = made["paramsSchema"]
        assert set(schema["properties"]) == {"format", "fileName", "columns", "gzip"} - {"gzip"}
        assert schema["required"] == ["format", "fileName"]
        assert schema["additionalProperties"] is False

    @pytest.mark.parametrize("caller", [ALICE, user("carol", "operator")])
    async def test_only_admins_manage(self, api: httpx.AsyncClient, caller: dict[str, str]) -> None:
        assert_problem(await api.post(TEMPLATES, json=sleep_template(), headers=caller), 403)
        made = await make(api, sleep_template())
        url = f"{TEMPLATES}/{made['id']}"
        assert_problem(await api.put(url, json=sleep_template(), headers=caller), 403)
        assert_problem(await api.post(f"{url}/deactivate", headers=caller), 403)
        assert (await api.get(url, headers=ADMIN)).json()["latestVersion"] == 1

    async def test_the_service_token_manages_too(self, api: httpx.AsyncClient) -> None:
        response = await api.post(TEMPLATES, json=sleep_template(), headers=SERVICE)
        assert response.status_code == 201, response.text

    async def test_an_update_is_a_new_version_and_old_ones_stay(
        self, api: httpx.AsyncClient
    ) -> None:
        made = await make(api, sleep_template())
        url = f"{TEMPLATES}/{made['id']}"
        changed = sleep_template(name="Longer nap", params={"seconds": 2})
        response = await api.put(url, json=changed, headers=ADMIN)
        assert response.status_code == 200, response.text
        assert (response.json()["version"], response.json()["name"]) == (2, "Longer nap")
        latest = (await api.get(url, headers=ALICE)).json()
        assert (latest["version"], latest["latestVersion"]) == (2, 2)
        first = (await api.get(url, params={"version": 1}, headers=ALICE)).json()
        assert (first["version"], first["latestVersion"], first["name"]) == (1, 2, "Short nap")
        assert first["params"] == {"seconds": 0.5}
        versions = (await api.get(f"{url}/versions", headers=ALICE)).json()
        assert [(v["version"], v["name"]) for v in versions] == [
            (1, "Short nap"),
            (2, "Longer nap"),
        ]
        assert_problem(await api.get(url, params={"version": 3}, headers=ALICE), 404)

    async def test_deactivating(self, api: httpx.AsyncClient) -> None:
        made = await make(api, sleep_template())
        url = f"{TEMPLATES}/{made['id']}"
        response = await api.post(f"{url}/deactivate", headers=ADMIN)
        assert response.status_code == 200, response.text
        assert response.json()["active"] is False
        assert response.json()["allowed"] is False
        again = await api.post(f"{url}/deactivate", headers=ADMIN)
        assert again.status_code == 200
        assert (await api.get(url, headers=ALICE)).json()["active"] is False
        assert_problem(await api.put(url, json=sleep_template(), headers=ADMIN), 409)
        used = await api.post(FROM, json={"templateId": made["id"]}, headers=ALICE)
        assert_problem(used, 404)

    async def test_unknown_templates_are_404(self, api: httpx.AsyncClient) -> None:
        for response in (
            await api.get(f"{TEMPLATES}/nope", headers=ALICE),
            await api.get(f"{TEMPLATES}/nope/versions", headers=ALICE),
            await api.put(f"{TEMPLATES}/nope", json=sleep_template(), headers=ADMIN),
            await api.post(f"{TEMPLATES}/nope/deactivate", headers=ADMIN),
            await api.post(FROM, json={"templateId": "nope"}, headers=ALICE),
        ):
            assert_problem(response, 404)

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            (sleep_template(taskType="nosuchtype"), "taskType"),
            (export_template(entityType="planet"), "entityType"),
            (export_template(entityType=None), "entityType"),
            (sleep_template(params={"seconds": -1}), "params.seconds"),
            (sleep_template(params={"snooze": 1}, optionalFields=[]), "params.snooze"),
            (sleep_template(requiredFields=["minutes"]), "requiredFields.0"),
            (sleep_template(optionalFields=["seconds", "minutes"]), "optionalFields.1"),
            (sleep_template(requiredFields=["seconds"]), "optionalFields"),
            (export_template(params={"columns": ["colour"]}, requiredFields=[]), "params.columns"),
            (sleep_template(name=""), "name"),
            (sleep_template(priority="asap"), "priority"),
            (sleep_template(requiredFields=["a", "a"]), "requiredFields"),
            (sleep_template(colour="red"), "colour"),
        ],
    )
    async def test_the_catalog_checks_a_template(
        self, api: httpx.AsyncClient, resources: Resources, body: dict[str, Any], field: str
    ) -> None:
        response = await api.post(TEMPLATES, json=body, headers=ADMIN)
        assert field in fields_of(response)
        listed = await api.get(TEMPLATES, params={"category": "diagnostics"}, headers=ADMIN)
        assert listed.json()["total"] == 0

    async def test_an_update_is_checked_too(self, api: httpx.AsyncClient) -> None:
        made = await make(api, sleep_template())
        url = f"{TEMPLATES}/{made['id']}"
        bad = await api.put(url, json=sleep_template(params={"seconds": "x"}), headers=ADMIN)
        assert fields_of(bad) == ["params.seconds"]
        assert (await api.get(url, headers=ADMIN)).json()["latestVersion"] == 1


class TestListing:
    async def test_shipped_templates_are_listed(self, api: httpx.AsyncClient) -> None:
        page = (await api.get(TEMPLATES, params={"pageSize": 100}, headers=ALICE)).json()
        by_id = {t["id"]: t for t in page["items"]}
        assert set(by_id) >= SHIPPED
        assert by_id["cleanup-old-tasks"]["requiredRole"] == "admin"
        assert by_id["cleanup-old-tasks"]["allowed"] is False
        assert by_id["nightly-product-export"]["allowed"] is True
        assert by_id["customer-import-upsert"]["params"] == {"mode": "upsert"}

    async def test_filters_and_paging(self, api: httpx.AsyncClient) -> None:
        nap = await make(api, sleep_template())
        export = await make(api, export_template())
        other = await make(api, sleep_template(name="Tagged", tags=["nap", "night"]))
        await api.post(f"{TEMPLATES}/{other['id']}/deactivate", headers=ADMIN)

        async def ids(**query: Any) -> list[str]:
            response = await api.get(TEMPLATES, params=query, headers=ALICE)
            assert response.status_code == 200, response.text
            return [t["id"] for t in response.json()["items"]]

        assert set(await ids(category="diagnostics")) == {nap["id"], other["id"]}
        assert set(await ids(taskType="export")) == {export["id"], "nightly-product-export"}
        assert nap["id"] in await ids(active="true")
        assert await ids(active="false") == [other["id"]]
        assert set(await ids(tag="nap")) == {nap["id"], other["id"]}
        assert await ids(tag=["nap", "night"]) == [other["id"]]
        assert await ids(tag=["nap", "nowhere"]) == []
        assert await ids(search="short NAP") == [nap["id"]]
        assert set(await ids(search="sleeps a")) == {nap["id"], other["id"]}
        assert await ids(search="100%") == []
        first = (await api.get(TEMPLATES, params={"pageSize": 2}, headers=ALICE)).json()
        second = (await api.get(TEMPLATES, params={"pageSize": 2, "page": 2}, headers=ALICE)).json()
        assert first["total"] == second["total"] == 6
        assert len(first["items"]) == 2
        assert not {t["id"] for t in first["items"]} & {t["id"] for t in second["items"]}


class TestUsing:
    async def test_a_task_from_a_template(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        made = await make(api, sleep_template())
        response = await api.post(
            FROM, json={"templateId": made["id"], "params": {"seconds": 3}}, headers=ALICE
        )
        assert response.status_code == 201, response.text
        task = response.json()
        assert task["params"] == {"seconds": 3}
        assert (task["templateId"], task["templateVersion"]) == (made["id"], 1)
        assert (task["name"], task["description"]) == ("Short nap", "Sleeps a little")
        assert task["tags"] == ["nap", "demo"]
        assert (task["priority"], task["maxRetries"]) == ("high", 2)
        assert task["notificationSettings"]["onCompletion"] is True
        assert task["requestedBy"] == "alice"
        assert task["status"] == "pending"
        events = (await api.get(f"{BASE}/{task['id']}/events", headers=ALICE)).json()
        assert [e["eventType"] for e in events] == ["operations.task.created"]

    async def test_defaults_fill_in_and_the_request_overrides(self, api: httpx.AsyncClient) -> None:
        made = await make(api, sleep_template())
        body = {
            "templateId": made["id"],
            "name": "Mine",
            "tags": ["own"],
            "priority": "low",
            "scheduledAt": "2999-01-01T00:00:00Z",
            "maxRetries": 0,
        }
        task = (await api.post(FROM, json=body, headers=ALICE)).json()
        assert task["params"] == {"seconds": 0.5}
        assert (task["name"], task["tags"], task["priority"]) == ("Mine", ["own"], "low")
        assert (task["status"], task["maxRetries"]) == ("scheduled", 0)

    async def test_the_task_keeps_its_version(self, api: httpx.AsyncClient) -> None:
        made = await make(api, sleep_template())
        url = f"{TEMPLATES}/{made['id']}"
        old = (await api.post(FROM, json={"templateId": made["id"]}, headers=ALICE)).json()
        await api.put(url, json=sleep_template(params={"seconds": 9}), headers=ADMIN)
        new = (await api.post(FROM, json={"templateId": made["id"]}, headers=ALICE)).json()
        assert (old["templateVersion"], old["params"]) == (1, {"seconds": 0.5})
        assert (new["templateVersion"], new["params"]) == (2, {"seconds": 9})
        kept = (await api.get(f"{BASE}/{old['id']}", headers=ALICE)).json()
        assert kept["templateVersion"] == 1
        pinned = {"templateId": made["id"], "version": 1}
        again = (await api.post(FROM, json=pinned, headers=ALICE)).json()
        assert (again["templateVersion"], again["params"]) == (1, {"seconds": 0.5})
        missing = await api.post(FROM, json={**pinned, "version": 7}, headers=ALICE)
        assert_problem(missing, 404)

    async def test_each_missing_required_field_is_named(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        made = await make(api, export_template())
        before = await counts(resources)
        response = await api.post(FROM, json={"templateId": made["id"]}, headers=ALICE)
        assert fields_of(response) == ["params.format", "params.fileName"]
        assert await counts(resources) == before
        ok = await api.post(
            FROM,
            json={"templateId": made["id"], "params": {"format": "jsonl", "fileName": "p.jsonl"}},
            headers=ALICE,
        )
        assert ok.status_code == 201, ok.text
        assert ok.json()["params"] == {"gzip": True, "format": "jsonl", "fileName": "p.jsonl"}

    async def test_params_the_template_does_not_offer_are_refused(
        self, api: httpx.AsyncClient
    ) -> None:
        made = await make(api, export_template())
        body = {
            "templateId": made["id"],
            "params": {"format": "csv", "fileName": "x.csv", "gzip": False, "sink": "service"},
        }
        response = await api.post(FROM, json=body, headers=ALICE)
        assert fields_of(response) == ["params.gzip", "params.sink"]

    async def test_the_catalog_checks_the_merged_params(self, api: httpx.AsyncClient) -> None:
        made = await make(api, export_template())
        body = {"templateId": made["id"], "params": {"format": "pdf", "fileName": "x"}}
        assert fields_of(await api.post(FROM, json=body, headers=ALICE)) == ["params.format"]
        body = {
            "templateId": made["id"],
            "params": {"format": "csv", "fileName": "x", "columns": ["colour"]},
        }
        assert fields_of(await api.post(FROM, json=body, headers=ALICE)) == ["params.columns"]

    async def test_the_templates_role_is_needed(self, api: httpx.AsyncClient) -> None:
        made = await make(api, sleep_template(requiredRole="operator"))
        body = {"templateId": made["id"]}
        assert_problem(await api.post(FROM, json=body, headers=ALICE), 403)
        listed = (await api.get(f"{TEMPLATES}/{made['id']}", headers=ALICE)).json()
        assert listed["allowed"] is False
        operator = user("olga", "operator")
        response = await api.post(FROM, json=body, headers=operator)
        assert response.status_code == 201, response.text

    async def test_a_plain_user_cannot_use_an_admin_template(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        before = await counts(resources)
        body = {"templateId": "cleanup-old-tasks"}
        assert_problem(await api.post(FROM, json=body, headers=ALICE), 403)
        assert await counts(resources) == before
        response = await api.post(FROM, json=body, headers=ADMIN)
        assert response.status_code == 201, response.text
        task = response.json()
        assert (task["taskType"], task["entityType"]) == ("maintenance", "cleanup-old-tasks")

    async def test_the_task_types_role_is_needed_too(self, api: httpx.AsyncClient) -> None:
        made = await make(
            api,
            {
                "name": "Any user, admin type",
                "taskType": "maintenance",
                "entityType": "outbox-sweep",
            },
        )
        response = await api.post(FROM, json={"templateId": made["id"]}, headers=ALICE)
        assert_problem(response, 403)

    async def test_a_shipped_import_takes_a_file(self, api: httpx.AsyncClient) -> None:
        body = {"templateId": "customer-import-upsert", "fileName": "customers.csv"}
        response = await api.post(FROM, json=body, headers=ALICE)
        assert response.status_code == 201, response.text
        task = response.json()
        assert task["status"] == "waiting"
        assert task["uploadUrl"]
        assert task["params"] == {"mode": "upsert"}
        without = await api.post(FROM, json={"templateId": "customer-import-upsert"}, headers=ALICE)
        assert fields_of(without) == ["fileName"]

    async def test_an_idempotency_key_is_honoured(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        made = await make(api, sleep_template())
        headers = {**ALICE, "Idempotency-Key": "from-template-1"}
        body = {"templateId": made["id"], "params": {"seconds": 1}}
        first = await api.post(FROM, json=body, headers=headers)
        assert first.status_code == 201, first.text
        again = await api.post(FROM, json=body, headers=headers)
        assert again.status_code == 200
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json()["id"] == first.json()["id"]
        other = await api.post(FROM, json={**body, "params": {"seconds": 2}}, headers=headers)
        assert_problem(other, 422)
        assert (await counts(resources))["tasks"] == 1


class TestPaths:
    @pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
    async def test_from_template_is_not_a_task_id(
        self, api: httpx.AsyncClient, method: str
    ) -> None:
        response = await api.request(method, FROM, headers=ALICE)
        assert response.status_code == 405
        assert response.headers["allow"] == "POST, OPTIONS"
