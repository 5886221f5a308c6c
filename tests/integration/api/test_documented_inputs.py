"""What the OpenAPI document says an operation takes, it takes, and what it does not, it refuses
(issue 9 §7: each class here was found by tests/integration/api/test_fuzz.py)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from service.bootstrap import Resources
from tests.fixtures.app import SERVICE, user
from tests.integration.api.support import BASE, assert_problem, create, start

API = "/api/v1/operations"
ALICE = user("alice")
LIMIT = 1000


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"files_max_bytes": LIMIT}


async def document(api: httpx.AsyncClient) -> dict[str, Any]:
    response = await api.get("/openapi.json")
    assert response.status_code == 200
    spec: dict[str, Any] = response.json()
    return spec


def parameter(spec: dict[str, Any], path: str, method: str, name: str) -> dict[str, Any]:
    [found] = [p for p in spec["paths"][path][method]["parameters"] if p["name"] == name]
    schema: dict[str, Any] = found["schema"]
    return schema


def fields_of(response: httpx.Response, status: int = 422) -> list[str]:
    return [e["field"] for e in assert_problem(response, status)["errors"]]


class TestIntegersAsJsonSchemaHasThem:
    async def test_a_number_with_a_zero_fraction_is_that_integer(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        body: dict[str, Any] = {"taskType": "import", "entityType": "product", "fileName": "p.csv"}
        task = await create(api, **body, fileSize=10.0, maxRetries=2e0)
        assert (task["fileSize"], task["maxRetries"]) == (10, 2)
        running = await create(api)
        await start(resources, running["id"])
        url = f"{BASE}/{running['id']}/progress"
        report = {"progress": 50.0, "totalItems": 1e1, "processedItems": 4.0}
        response = await api.patch(url, json=report, headers=SERVICE)
        assert response.status_code == 200, response.text
        now = (await api.get(f"{BASE}/{running['id']}", headers=ALICE)).json()
        assert (now["progress"], now["totalItems"], now["processedItems"]) == (50, 10, 4)

    async def test_a_fraction_is_still_refused(self, api: httpx.AsyncClient) -> None:
        response = await api.post(
            BASE, json={"taskType": "sleep", "maxRetries": 2.5}, headers=ALICE
        )
        assert fields_of(response) == ["maxRetries"]


class TestInstantsByTheYearTheyAreWrittenIn:
    async def test_the_documented_years_are_the_years_taken(
        self, api: httpx.AsyncClient, subtests: pytest.Subtests
    ) -> None:
        pattern = (await document(api))["components"]["schemas"]["TaskCreate"]["properties"]
        years = re.compile(pattern["scheduledAt"]["anyOf"][0]["pattern"])
        for moment in (
            "1969-12-31T23:59:59Z",
            "1970-01-01T00:30:00+01:00",  # 1969 in UTC, 1970 as written
            "9998-12-31T23:00:00-12:00",  # 9999 in UTC, 9998 as written
            "9999-01-01T00:00:00Z",
        ):
            with subtests.test(moment=moment):
                body = {"taskType": "sleep", "scheduledAt": moment}
                created = await api.post(BASE, json=body, headers=ALICE)
                listed = await api.get(BASE, params={"startDate": moment}, headers=ALICE)
                documented = years.search(moment) is not None
                assert (created.status_code == 201) is documented, created.text
                assert (listed.status_code == 200) is documented, listed.text


class TestIdempotencyKeyAsDocumented:
    async def test_the_header_states_its_pattern_and_length(self, api: httpx.AsyncClient) -> None:
        schema = parameter(await document(api), f"{API}/tasks", "post", "Idempotency-Key")
        assert schema["maxLength"] == 257
        assert re.fullmatch(schema["pattern"], '"a key"')
        assert not re.fullmatch(schema["pattern"], '"   "')

    async def test_a_quoted_key_is_counted_as_written(self, api: httpx.AsyncClient) -> None:
        body = {"taskType": "sleep"}
        longest = '"' + "k" * 253 + '\\""'  # 255 characters between the quotes
        taken = await api.post(BASE, json=body, headers={**ALICE, "Idempotency-Key": longest})
        assert taken.status_code == 201, taken.text
        escaped = '"' + '\\"' * 128 + '"'  # a key of 128 quotes, written in 256 characters
        refused = await api.post(BASE, json=body, headers={**ALICE, "Idempotency-Key": escaped})
        assert fields_of(refused, 400) == ["Idempotency-Key"]


class TestStatusListAsDocumented:
    async def test_spaces_around_statuses_are_taken_and_other_text_refused(
        self, api: httpx.AsyncClient
    ) -> None:
        pattern = parameter(await document(api), BASE, "get", "status")["pattern"]
        for value, status in [("pending , failed", 200), ("pending,\tfailed", 422)]:
            response = await api.get(BASE, params={"status": value}, headers=ALICE)
            assert response.status_code == status, response.text
            assert (re.fullmatch(pattern, value) is not None) is (status == 200)


class TestFilesAsDocumented:
    async def test_the_document_bounds_every_announced_size_by_the_setting(
        self, api: httpx.AsyncClient
    ) -> None:
        spec = await document(api)
        schemas = spec["components"]["schemas"]
        bulk = spec["paths"][f"{API}/bulk/import"]["post"]["requestBody"]["content"]
        announced = [
            schemas["FileCreate"]["properties"]["size"],
            schemas["TaskCreate"]["properties"]["fileSize"],
            bulk["application/json"]["schema"]["properties"]["fileSize"],
        ]
        assert [a["anyOf"][0]["maximum"] for a in announced] == [LIMIT] * 3
        at_limit = {"fileName": "f.csv", "size": LIMIT}
        assert (await api.post(f"{API}/files", json=at_limit, headers=ALICE)).status_code == 201
        over = await api.post(f"{API}/files", json={**at_limit, "size": LIMIT + 1}, headers=ALICE)
        assert fields_of(over, 413) == ["size"]

    async def test_an_import_takes_the_media_types_its_document_lists(
        self, api: httpx.AsyncClient
    ) -> None:
        content = (await document(api))["paths"][f"{API}/bulk/import"]["post"]["requestBody"]
        schema = content["content"]["application/json"]["schema"]
        pattern = schema["properties"]["fileContentType"]["pattern"]
        body = {"entityType": "product", "fileName": "p.csv"}
        for media, status in [("Text/CSV; charset=utf-8", 201), ("image/png", 415)]:
            response = await api.post(
                f"{API}/bulk/import", json={**body, "fileContentType": media}, headers=ALICE
            )
            assert response.status_code == status, response.text
            assert (re.fullmatch(pattern, media) is not None) is (status == 201)

    async def test_an_import_form_takes_no_other_field(self, api: httpx.AsyncClient) -> None:
        form = (await document(api))["paths"][f"{API}/bulk/import"]["post"]["requestBody"]
        assert form["content"]["multipart/form-data"]["schema"]["additionalProperties"] is False
        response = await api.post(
            f"{API}/bulk/import",
            data={"entityType": "product", "colour": "red"},
            files={"file": ("p.csv", b"sku,name\n", "text/csv")},
            headers=ALICE,
        )
        assert fields_of(response) == ["colour"]


class TestIdentityHeadersAsDocumented:
    async def test_the_detailed_health_documents_its_422_for_a_header_it_cannot_read(
        self, api: httpx.AsyncClient
    ) -> None:
        documented = (await document(api))["paths"]["/health/detailed"]["get"]["responses"]
        unreadable = [(b"x-user-id", b"a\tb"), (b"x-user-roles", b"admin")]
        response = await api.get("/health/detailed", headers=unreadable)
        assert fields_of(response) == ["x-user-id"]
        assert "422" in documented
