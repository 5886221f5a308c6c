"""No input is a 500: every integer, date, string, nesting and size the API takes is bounded, and
anything out of bounds is a 4xx problem naming its field that changes nothing (issue 9 §2)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import httpx
import pytest

from service.bootstrap import Resources
from tests.fixtures.app import ADMIN, SERVICE, user
from tests.fixtures.catalog import ECHO, with_types
from tests.integration.api.support import BASE, assert_problem, counts, create, start

API = "/api/v1/operations"
ALICE = user("alice")
JSON = {**ALICE, "Content-Type": "application/json"}
NOTHING = {"tasks": 0, "events": 0, "outbox": 0}
BIG = [2**31, 2**53, 2**63, 2**64, 4611686018427387904, 9223372036854775808, 10**30]


@pytest.fixture(autouse=True)
def echo_type(request: pytest.FixtureRequest) -> None:
    """A type that keeps any params: these tests are of the bounds every type shares."""
    for name in ("api", "embedded"):
        if name in request.fixturenames:
            client = request.getfixturevalue(name)
            with_types(client.app.state.resources, ECHO)


def raw(value: Any) -> bytes:
    """JSON with every non-ASCII character escaped: lone surrogates travel as \\ud800."""
    return json.dumps(value).encode()


def nested_text(levels: int) -> bytes:
    """A task whose params nest `levels` lists deep, written out (json.dumps recurses)."""
    deep = b"[" * levels + b"1" + b"]" * levels
    return b'{"taskType": "echo", "params": {"deep": ' + deep + b"}}"


def nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


def fields_of(response: httpx.Response, status: int = 422) -> list[str]:
    return [e["field"] for e in assert_problem(response, status)["errors"]]


async def post_task(api: httpx.AsyncClient, body: bytes) -> httpx.Response:
    return await api.post(BASE, content=body, headers=JSON)


class TestIntegersBeyondTheirColumns:
    async def test_paging_numbers_are_bounded(
        self, api: httpx.AsyncClient, subtests: pytest.Subtests
    ) -> None:
        task = await create(api)
        for path, field in [
            (f"{BASE}/{task['id']}/logs?page=4611686018427387904", "page"),
            (f"{BASE}/{task['id']}/logs?pageSize=9223372036854775808", "pageSize"),
            (f"{BASE}?page=9223372036854775808", "page"),
            (f"{BASE}?pageSize=-9223372036854775809", "pageSize"),
            (f"{API}/dead-letters?offset=9223372036854775808", "offset"),
            (f"{API}/dead-letters?limit=18446744073709551616", "limit"),
        ]:
            with subtests.test(path=path):
                assert fields_of(await api.get(path, headers=ADMIN)) == [field]

    async def test_body_integers_are_bounded_and_nothing_is_created(
        self, api: httpx.AsyncClient, resources: Resources, subtests: pytest.Subtests
    ) -> None:
        for field, values in [("fileSize", BIG[2:]), ("maxRetries", BIG)]:
            for value in values:
                with subtests.test(field=field, value=value):
                    body = {"taskType": "sleep", "fileName": "a.csv", field: value}
                    assert fields_of(await post_task(api, raw(body))) == [field]
        assert await counts(resources) == NOTHING

    async def test_a_file_size_past_32_bits_is_stored_and_one_past_the_limit_is_413(
        self, api: httpx.AsyncClient
    ) -> None:
        body: dict[str, Any] = {"taskType": "import", "entityType": "product", "fileName": "p.csv"}
        task = await create(api, **body, fileSize=3 * 1024**3)
        assert task["fileSize"] == 3 * 1024**3
        over = await post_task(api, raw({**body, "fileSize": 2**53 - 1}))
        assert_problem(over, 413)

    async def test_progress_counts_are_bounded_and_change_nothing(
        self, api: httpx.AsyncClient, resources: Resources, subtests: pytest.Subtests
    ) -> None:
        task = await create(api)
        await start(resources, task["id"])
        url = f"{BASE}/{task['id']}/progress"
        for field in ("totalItems", "processedItems", "succeededItems", "failedItems"):
            for value in (2**31, 2**63):
                with subtests.test(field=field, value=value):
                    response = await api.patch(url, json={field: value}, headers=SERVICE)
                    assert fields_of(response) == [field]
        edge = await api.patch(url, json={"totalItems": 2**31 - 1}, headers=SERVICE)
        assert edge.status_code == 200, edge.text
        now = (await api.get(f"{BASE}/{task['id']}", headers=ALICE)).json()
        assert (now["processedItems"], now["succeededItems"]) == (0, 0)


class TestDatesThatOverflow:
    EXTREMES: ClassVar[list[str]] = [
        "0001-01-01T00:00:00+14:00",  # before year 1 in UTC
        "9999-12-31T23:59:59-12:00",  # after year 9999 in UTC
        "0001-01-01T00:00:00Z",
        "9999-06-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
    ]

    async def test_scheduled_at_is_bounded(
        self, api: httpx.AsyncClient, resources: Resources, subtests: pytest.Subtests
    ) -> None:
        for moment in self.EXTREMES:
            with subtests.test(moment=moment):
                body = raw({"taskType": "sleep", "scheduledAt": moment})
                assert fields_of(await post_task(api, body)) == ["scheduledAt"]
        assert await counts(resources) == NOTHING
        edge = await create(api, scheduledAt="9998-12-31T23:59:59+00:00")
        assert edge["status"] == "scheduled"

    async def test_list_dates_are_bounded(
        self, api: httpx.AsyncClient, subtests: pytest.Subtests
    ) -> None:
        for moment in self.EXTREMES:
            for field in ("startDate", "endDate"):
                with subtests.test(field=field, moment=moment):
                    response = await api.get(BASE, params={field: moment}, headers=ALICE)
                    assert fields_of(response) == [field]
        everything = {"startDate": "1970-01-01T00:00:00Z", "endDate": "9998-12-31T23:59:59Z"}
        assert (await api.get(BASE, params=everything, headers=ALICE)).status_code == 200

    async def test_a_cursor_with_an_overflowing_date_is_422(
        self, api: httpx.AsyncClient, subtests: pytest.Subtests
    ) -> None:
        task_id = "00000000-0000-0000-0000-000000000000"
        for moment in self.EXTREMES:
            with subtests.test(moment=moment):
                token = base64.urlsafe_b64encode(raw([moment, task_id])).decode().rstrip("=")
                response = await api.get(BASE, params={"cursor": token}, headers=ALICE)
                assert fields_of(response) == ["cursor"]


class TestDeepNesting:
    async def test_a_body_deeper_than_the_parser_allows_is_422_naming_the_body(
        self, api: httpx.AsyncClient, resources: Resources, subtests: pytest.Subtests
    ) -> None:
        for levels in (65, 500, 900, 5000):
            with subtests.test(levels=levels):
                assert fields_of(await post_task(api, nested_text(levels))) == ["body"]
        almost_a_mebibyte = b"[" * (1024**2 - 1)  # RecursionError in json.loads before
        assert fields_of(await post_task(api, almost_a_mebibyte)) == ["body"]
        assert await counts(resources) == NOTHING

    async def test_brackets_inside_strings_are_not_nesting(self, api: httpx.AsyncClient) -> None:
        text = '[{"\\"' * 5000
        task = await create(api, taskType="echo", params={"text": text})
        assert task["params"] == {"text": text}

    async def test_params_deeper_than_the_setting_name_params(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        response = await post_task(api, raw({"taskType": "echo", "params": {"a": nested(32)}}))
        assert fields_of(response) == ["params"]
        assert "33 levels" in response.json()["errors"][0]["reason"]
        assert await counts(resources) == NOTHING
        deepest = {"a": nested(31)}  # the params object and 31 lists in it: 32 levels
        assert (await create(api, taskType="echo", params=deepest))["params"] == deepest


class TestParamsDepthSetting:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"params_max_depth": 3}

    async def test_the_depth_is_a_setting(self, api: httpx.AsyncClient) -> None:
        shallow = {"a": {"b": [1]}}
        assert (await create(api, taskType="echo", params=shallow))["params"] == shallow
        response = await post_task(api, raw({"taskType": "echo", "params": {"a": {"b": [[]]}}}))
        assert fields_of(response) == ["params"]


class TestUnstorableText:
    CASES: ClassVar[list[tuple[dict[str, Any], str]]] = [
        ({"taskType": "echo", "params": {"note": "\ud800"}}, "params.note"),
        ({"taskType": "echo", "params": {"note": "a\udfffb"}}, "params.note"),
        ({"taskType": "echo", "params": {"rows": ["ok", {"x": "\udc00"}]}}, "params.rows.1.x"),
        ({"taskType": "echo", "params": {"k\ud800": 1}}, "params.k"),
        ({"taskType": "echo", "params": {"k\x00": 1}}, "params.k\x00"),
        ({"taskType": "sleep", "fileName": "a\ud800.csv"}, "fileName"),
        ({"taskType": "sleep", "templateId": "\ud800"}, "templateId"),
    ]

    async def test_lone_surrogates_and_nul_are_422_naming_where_they_are(
        self, api: httpx.AsyncClient, resources: Resources, subtests: pytest.Subtests
    ) -> None:
        for body, field in self.CASES:
            with subtests.test(field=field):
                response = await post_task(api, raw(body))
                assert [f for f in fields_of(response) if f.startswith(field)]
        assert await counts(resources) == NOTHING

    async def test_a_pair_of_surrogates_is_one_character_and_fine(
        self, api: httpx.AsyncClient
    ) -> None:
        response = await post_task(api, raw({"taskType": "echo", "params": {"e": "\U0001f600"}}))
        assert response.status_code == 201, response.text
        assert response.json()["params"] == {"e": "\U0001f600"}

    async def test_a_body_that_is_not_utf8_is_422_naming_the_body(
        self, api: httpx.AsyncClient, subtests: pytest.Subtests
    ) -> None:
        for body in (b'{"taskType": "sl\xffeep"}', '{"taskType": "sleep"}'.encode("utf-16")):
            with subtests.test(body=body):
                assert fields_of(await post_task(api, body)) == ["body"]

    async def test_a_number_too_long_to_read_is_422(self, api: httpx.AsyncClient) -> None:
        body = b'{"taskType": "echo", "params": {"n": ' + b"9" * 5000 + b"}}"
        assert fields_of(await post_task(api, body)) == ["body"]


async def chunks(body: bytes) -> AsyncIterator[bytes]:
    """A body without Content-Length (chunked): the limit is found by counting."""
    for offset in range(0, len(body), 64 * 1024):
        yield body[offset : offset + 64 * 1024]


class TestSizes:
    async def test_a_body_over_the_limit_is_413_whether_declared_or_not(
        self, api: httpx.AsyncClient, resources: Resources, subtests: pytest.Subtests
    ) -> None:
        body = raw({"taskType": "echo", "params": {"blob": "x" * 1024**2}})
        contents: list[tuple[str, bytes | AsyncIterator[bytes]]] = [
            ("declared", body),
            ("chunked", chunks(body)),
        ]
        for name, content in contents:
            with subtests.test(name):
                response = await api.post(BASE, content=content, headers=JSON)
                assert fields_of(response, 413) == ["body"]
        assert await counts(resources) == NOTHING

    @pytest.mark.parametrize(
        "params",
        [
            {"blob": "x" * 900_000},  # 10 MB before; 900 kB fits in a body
            {f"k{i}": i for i in range(200_000)},  # 200k keys
            {"list": list(range(1_000_000))},  # a 1M-item list
        ],
        ids=["large-string", "200k-keys", "1M-items"],
    )
    async def test_large_params_are_refused(
        self, api: httpx.AsyncClient, resources: Resources, params: dict[str, Any]
    ) -> None:
        response = await post_task(api, raw({"taskType": "echo", "params": params}))
        assert response.status_code in (413, 422), response.text
        field = "body" if response.status_code == 413 else "params"
        assert fields_of(response, response.status_code) == [field]
        assert await counts(resources) == NOTHING

    async def test_params_up_to_the_limit_are_taken(self, api: httpx.AsyncClient) -> None:
        blob = "x" * (64 * 1024 - len('{"blob":""}'))
        assert (await create(api, taskType="echo", params={"blob": blob}))["params"]["blob"] == blob
        response = await post_task(api, raw({"taskType": "echo", "params": {"blob": blob + "x"}}))
        assert fields_of(response) == ["params"]

    async def test_bulk_json_bodies_have_the_json_limit(self, api: httpx.AsyncClient) -> None:
        body = raw({"entityType": "product", "fileName": "p.csv", "params": {"x": "y" * 1024**2}})
        response = await api.post(f"{API}/bulk/import", content=body, headers=JSON)
        assert fields_of(response, 413) == ["body"]


class TestBodyLimitSetting:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"max_body_bytes": 2048, "params_max_bytes": 1024}

    async def test_the_limits_are_settings(self, api: httpx.AsyncClient) -> None:
        over_params = raw({"taskType": "echo", "params": {"x": "y" * 1100}})
        assert fields_of(await post_task(api, over_params)) == ["params"]
        over_body = raw({"taskType": "echo", "params": {"x": "y" * 2100}})
        assert fields_of(await post_task(api, over_body), 413) == ["body"]


class TestListsStaySmall:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"list_params_max_bytes": 100}

    async def test_long_params_are_left_out_of_list_items_and_flagged(
        self, api: httpx.AsyncClient
    ) -> None:
        small = await create(api, taskType="echo", params={"note": "short"})
        large = await create(api, taskType="echo", params={"note": "x" * 200})
        items = {t["id"]: t for t in (await api.get(BASE, headers=ALICE)).json()["items"]}
        assert (items[small["id"]]["params"], items[small["id"]]["paramsOmitted"]) == (
            {"note": "short"},
            False,
        )
        assert (items[large["id"]]["params"], items[large["id"]]["paramsOmitted"]) == (None, True)
        one = (await api.get(f"{BASE}/{large['id']}", headers=ALICE)).json()
        assert one["params"] == {"note": "x" * 200}
        assert "paramsOmitted" not in one


class TestAPageOfLargeTasks:
    async def test_a_page_of_tasks_with_the_largest_params_stays_small(
        self, api: httpx.AsyncClient
    ) -> None:
        blob = "x" * (64 * 1024 - 100)
        for _ in range(20):
            await create(api, taskType="echo", params={"blob": blob})
        response = await api.get(BASE, params={"pageSize": 100}, headers=ALICE)
        assert len(response.json()["items"]) == 20
        assert len(response.content) < 40 * 1024  # 1.3 MB with the params


class TestNoLenientCoercion:
    CREATE: ClassVar[list[tuple[dict[str, Any], str]]] = [
        ({"fileName": "a.csv", "fileSize": "10"}, "fileSize"),
        ({"fileName": "a.csv", "fileSize": True}, "fileSize"),
        ({"fileName": "a.csv", "fileSize": 10.5}, "fileSize"),
        ({"maxRetries": "3"}, "maxRetries"),
        ({"maxRetries": False}, "maxRetries"),
        ({"scheduledAt": 0}, "scheduledAt"),
        ({"scheduledAt": "0"}, "scheduledAt"),
        ({"scheduledAt": 1735689600.5}, "scheduledAt"),
        ({"scheduledAt": "2030-01-01"}, "scheduledAt"),
        ({"priority": 1}, "priority"),
        ({"params": "{}"}, "params"),
    ]

    async def test_create_takes_no_coerced_values(
        self, api: httpx.AsyncClient, resources: Resources, subtests: pytest.Subtests
    ) -> None:
        for extra, field in self.CREATE:
            with subtests.test(field=field, extra=extra):
                response = await post_task(api, raw({"taskType": "sleep", **extra}))
                assert fields_of(response) == [field]
        assert await counts(resources) == NOTHING

    async def test_list_dates_are_iso_8601_only(
        self, api: httpx.AsyncClient, subtests: pytest.Subtests
    ) -> None:
        for value in ("0", "1735689600", "2030-01-01", "yesterday", "2030-01-01T00:00:00"):
            with subtests.test(value=value):
                response = await api.get(BASE, params={"startDate": value}, headers=ALICE)
                assert fields_of(response) == ["startDate"]

    async def test_progress_refuses_unknown_fields_and_counts_past_the_total(
        self, api: httpx.AsyncClient, resources: Resources, subtests: pytest.Subtests
    ) -> None:
        task = await create(api)
        await start(resources, task["id"])
        url = f"{BASE}/{task['id']}/progress"
        assert (await api.patch(url, json={"totalItems": 10}, headers=SERVICE)).status_code == 200
        before = await counts(resources)
        for body, field in [
            ({"foo": 1}, "foo"),
            ({"status": "completed"}, "status"),
            ({"progress": "50"}, "progress"),
            ({"progress": True}, "progress"),
            ({"processedItems": 11}, "processedItems"),  # past the stored total
            ({"totalItems": 5, "processedItems": 6}, "processedItems"),
            ({"processedItems": 3, "totalItems": 2}, "processedItems"),
        ]:
            with subtests.test(body=body):
                response = await api.patch(url, json=body, headers=SERVICE)
                assert fields_of(response) == [field]
        now = (await api.get(f"{BASE}/{task['id']}", headers=ALICE)).json()
        assert (now["status"], now["totalItems"], now["processedItems"]) == ("processing", 10, 0)
        assert await counts(resources) == before
        done = await api.patch(url, json={"processedItems": 10}, headers=SERVICE)
        assert done.status_code == 200, done.text


class TestUnknownFields:
    async def test_unknown_fields_are_422_naming_each(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        body = {"taskType": "sleep", "parameters": {}, "notifications": {}, "title": "x"}
        response = await post_task(api, raw(body))
        assert sorted(fields_of(response)) == ["notifications", "parameters", "title"]
        assert await counts(resources) == NOTHING

    async def test_one_field_under_both_spellings_is_422(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        body = {"task_type": "sleep", "taskType": "noop"}
        response = await post_task(api, raw(body))
        problem = assert_problem(response, 422)
        assert [e["field"] for e in problem["errors"]] == ["taskType"]
        assert "task_type" in problem["errors"][0]["reason"]
        assert await counts(resources) == NOTHING

    async def test_unknown_and_doubled_query_parameters_are_422(
        self, api: httpx.AsyncClient
    ) -> None:
        assert fields_of(await api.get(BASE, params={"colour": "red"}, headers=ALICE)) == ["colour"]
        doubled = {"pageSize": 5, "page_size": 6}
        assert fields_of(await api.get(BASE, params=doubled, headers=ALICE)) == ["pageSize"]


class TestCursorGarbage:
    @staticmethod
    def token(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    async def test_any_garbage_is_422_naming_the_cursor(
        self, api: httpx.AsyncClient, subtests: pytest.Subtests
    ) -> None:
        garbage = [
            "!!!",
            "é",
            "a",
            self.token(b"\xff\xfe"),
            self.token(b"{}"),
            self.token(b"[1, 2]"),
            self.token(b'["x", "y"]'),
            self.token(b'["2024-05-01T12:00:00", "00000000-0000-0000-0000-000000000000"]'),
            self.token(b'["2024-05-01T12:00:00Z", 7]'),
            self.token(b'["2024-05-01T12:00:00Z"]'),
            self.token(
                b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
            ),
        ]
        for cursor in garbage:
            with subtests.test(cursor=cursor):
                response = await api.get(BASE, params={"cursor": cursor}, headers=ALICE)
                assert fields_of(response) == ["cursor"]


class TestCallerHeaders:
    @staticmethod
    async def post(api: httpx.AsyncClient, **headers: bytes) -> httpx.Response:
        raw_headers = [(name.replace("_", "-").encode(), value) for name, value in headers.items()]
        return await api.post(BASE, json={"taskType": "sleep"}, headers=raw_headers)

    async def test_a_utf8_user_id_is_stored_as_sent(self, api: httpx.AsyncClient) -> None:
        created = await self.post(api, x_user_id="élodie".encode())
        assert created.status_code == 201, created.text
        assert created.json()["requestedBy"] == "élodie"
        listed = await api.get(BASE, headers=[(b"x-user-id", "élodie".encode())])
        assert [t["id"] for t in listed.json()["items"]] == [created.json()["id"]]

    async def test_a_user_id_of_128_characters_fits_in_any_encoding(
        self, api: httpx.AsyncClient
    ) -> None:
        created = await self.post(api, x_user_id="é".encode() * 128)  # 256 bytes
        assert created.status_code == 201, created.text
        assert created.json()["requestedBy"] == "é" * 128

    async def test_headers_that_are_not_utf8_text_are_422(
        self, api: httpx.AsyncClient, resources: Resources, subtests: pytest.Subtests
    ) -> None:
        for name, value in [
            ("x_user_id", b"\xe9lodie"),  # Latin-1, not UTF-8
            ("x_user_id", "é".encode() * 129),
            ("x_user_id", b"a\x01b"),
            ("x_user_roles", b"\xffadmin"),
        ]:
            with subtests.test(name=name, value=value):
                response = await self.post(api, **{"x_user_id": b"alice", name: value})
                assert fields_of(response) == [name.replace("_", "-")]
        assert await counts(resources) == NOTHING


class TestServiceTokenRefused:
    async def test_a_wrong_service_token_is_refused_even_beside_a_user(
        self, api: httpx.AsyncClient
    ) -> None:
        """A caller who sends X-Service-Token believes itself internal: it must learn it is
        not, not be taken for the user it also names."""
        wrong = {**ALICE, "X-Service-Token": "not-the-token"}
        assert_problem(await api.get(BASE, headers=wrong), 401)
        bearer = {**ALICE, "Authorization": "Bearer a-users-own-jwt"}  # forwarded by a gateway
        assert (await api.get(BASE, headers=bearer)).status_code == 200
