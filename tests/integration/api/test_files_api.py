"""/files and a task's files, on both databases and both stores (local and a real S3 server).

Local URLs are relative and served by the API itself; S3 URLs go to the S3 server.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit
from uuid import UUID, uuid4

import httpx
import pytest
from sqlalchemy import update

from service.bootstrap import Resources
from service.clock import utcnow
from service.db.engine import session_scope
from service.db.repositories.files import FileRepository
from service.db.tables import files_table, tasks_table
from service.storage.local import LocalFileStore
from service.usecases import file_retention, outputs
from service.usecases.files import FilePolicy, FilePurpose
from tests.fixtures.app import ADMIN, user, wait_until
from tests.fixtures.s3 import transfer
from tests.integration.api.support import (
    BASE as TASKS,
    assert_problem,
    count,
    create,
    event_types,
)

FILES = "/api/v1/operations/files"
ALICE = user("alice")
BOB = user("bob")
MIB = 1024 * 1024
LIMIT = 4 * MIB


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def put_headers(storage: str, content_type: str) -> dict[str, str]:
    """What a PUT to an upload URL must send: S3's URLs also only create (If-None-Match)."""
    only_create = {"If-None-Match": "*"} if storage == "s3" else {}
    return {"Content-Type": content_type, **only_create}


async def stored_key(resources: Resources, file_id: str) -> str:
    async with session_scope(resources.sessionmaker) as session:
        row = await FileRepository(session).get(UUID(file_id))
    assert row is not None
    return str(row.key)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"files_max_bytes": LIMIT}


async def new_file(
    api: httpx.AsyncClient, headers: dict[str, str] | None = None, **body: Any
) -> dict[str, Any]:
    response = await api.post(
        FILES, json={"fileName": "products.csv", **body}, headers=headers or ALICE
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def upload(
    api: httpx.AsyncClient, ticket: dict[str, Any], data: bytes | AsyncIterator[bytes]
) -> httpx.Response:
    url = ticket["uploadUrl"]
    return await transfer(api, "PUT", url, content=data, headers=ticket["uploadHeaders"])


async def uploaded(
    api: httpx.AsyncClient, data: bytes, headers: dict[str, str] | None = None, **body: Any
) -> dict[str, Any]:
    """A file created, uploaded and confirmed; returns its record."""
    ticket = await new_file(api, headers, **body)
    assert (await upload(api, ticket, data)).status_code == 200
    done = await api.post(f"{FILES}/{ticket['file']['id']}/complete", headers=headers or ALICE)
    assert done.status_code == 200, done.text
    result: dict[str, Any] = done.json()
    return result


async def download(api: httpx.AsyncClient, path: str, headers: dict[str, str]) -> httpx.Response:
    link = await api.get(path, headers=headers)
    assert link.status_code == 200, link.text
    return await transfer(api, "GET", link.json()["downloadUrl"])


class TestCreateFile:
    async def test_returns_201_a_pending_file_and_where_to_put_it(
        self, api: httpx.AsyncClient, storage: str
    ) -> None:
        response = await api.post(
            FILES, json={"fileName": "products.csv", "size": 12}, headers=ALICE
        )
        assert response.status_code == 201, response.text
        body = response.json()
        file = body["file"]
        assert response.headers["location"] == f"{FILES}/{file['id']}"
        assert UUID(file["id"])
        assert (file["fileName"], file["contentType"], file["size"]) == (
            "products.csv",
            "text/csv",
            12,
        )
        assert (file["status"], file["owner"], file["purpose"]) == ("pending", "alice", "input")
        assert file["sha256"] is None  # nothing announced, nothing received yet
        assert (body["uploadMethod"], body["uploadHeaders"]) == (
            "PUT",
            put_headers(storage, "text/csv"),
        )
        assert body["uploadUrl"]
        assert body["expiresAt"]
        assert "key" not in file
        assert all("_" not in k for k in (*body, *file)), "camelCase keys"
        assert (await api.get(f"{FILES}/{file['id']}", headers=ALICE)).json() == file

    BAD: ClassVar[list[tuple[dict[str, Any], str]]] = [
        ({}, "fileName"),
        ({"fileName": ""}, "fileName"),
        ({"fileName": "x" * 256}, "fileName"),
        ({"fileName": "a\x00.csv"}, "fileName"),
        ({"fileName": "a\x1b[31m.csv"}, "fileName"),
        ({"fileName": "a.csv\r\nX-Injected: 1"}, "fileName"),
        ({"fileName": "a.csv", "size": -1}, "size"),
        ({"fileName": "a.csv", "size": "big"}, "size"),
        ({"fileName": "a.csv", "contentType": "not a type"}, "contentType"),
        ({"fileName": "a.csv", "contentType": "text/csv; a\r\nX-Injected: 1"}, "contentType"),
        ({"fileName": "a.csv", "contentType": "text/csv; charset=é"}, "contentType"),
        ({"fileName": "a.csv", "sha256": "0" * 63}, "sha256"),
        ({"fileName": "a.csv", "sha256": "g" * 64}, "sha256"),
    ]

    @pytest.mark.parametrize("storage", ["local"])  # validation comes before any storage
    async def test_bad_input_is_a_422_problem_and_writes_nothing(
        self, api: httpx.AsyncClient, resources: Resources, subtests: pytest.Subtests
    ) -> None:
        for body, field in self.BAD:
            with subtests.test(body=body):
                problem = assert_problem(await api.post(FILES, json=body, headers=ALICE), 422)
                assert field in [e["field"] for e in problem["errors"]]
        with subtests.test("no caller"):
            response = await api.post(FILES, json={"fileName": "a.csv"})
            assert_problem(response, 401, "unauthenticated")
        assert await count(resources, files_table) == 0

    @pytest.mark.parametrize("storage", ["local"])  # refused before any storage
    async def test_a_declared_size_over_the_limit_is_413_and_writes_nothing(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        response = await api.post(
            FILES, json={"fileName": "a.csv", "size": LIMIT + 1}, headers=ALICE
        )
        problem = assert_problem(response, 413, "file-too-large")
        assert problem["detail"] == (
            f"the file has {LIMIT + 1} bytes; files are limited to {LIMIT} bytes"
        )
        assert problem["errors"] == [{"field": "size", "reason": problem["detail"]}]
        assert await count(resources, files_table) == 0

    @pytest.mark.parametrize("storage", ["local"])  # nothing here depends on the store
    async def test_any_well_formed_content_type_and_an_announced_sha256_are_kept(
        self, api: httpx.AsyncClient
    ) -> None:
        digest = sha256(b"%PDF-1.7")
        ticket = await new_file(
            api, fileName="scan.pdf", contentType="application/pdf", sha256=digest.upper()
        )
        assert ticket["file"]["contentType"] == "application/pdf"
        assert ticket["file"]["sha256"] == digest  # stored lowercase
        assert ticket["uploadHeaders"] == {"Content-Type": "application/pdf"}


class TestUploadAndDownload:
    async def test_a_multi_megabyte_round_trip_through_the_signed_urls(
        self, api: httpx.AsyncClient
    ) -> None:
        data = hashlib.sha256(b"seed").digest() * (3 * MIB // 32)
        ticket = await new_file(api, fileName="Prix été.csv", size=len(data))
        assert (await upload(api, ticket, data)).status_code == 200
        file_id = ticket["file"]["id"]
        done = await api.post(f"{FILES}/{file_id}/complete", headers=ALICE)
        assert (done.json()["status"], done.json()["size"]) == ("ready", len(data))
        assert done.json()["sha256"] == sha256(data)
        assert (await api.get(f"{FILES}/{file_id}", headers=ALICE)).json() == done.json()
        got = await download(api, f"{FILES}/{file_id}/download", ALICE)
        assert got.status_code == 200
        assert got.content == data
        disposition = got.headers["content-disposition"]
        assert disposition.startswith("attachment;")
        assert "Prix%20%C3%A9t%C3%A9.csv" in disposition

    async def test_a_download_is_an_attachment_whose_type_no_browser_renders(
        self, api: httpx.AsyncClient, storage: str
    ) -> None:
        page = b"<html><script>document.cookie</script></html>"
        html = await uploaded(api, page, fileName="page.html", contentType="text/html")
        csv = await uploaded(api, b"sku\nA-1\n", fileName="p.csv")
        for file, served in ((html, "application/octet-stream"), (csv, "text/csv")):
            got = await download(api, f"{FILES}/{file['id']}/download", ALICE)
            assert got.status_code == 200
            assert got.headers["content-type"].split(";")[0] == served
            assert got.headers["content-disposition"].startswith("attachment;")
            assert file["fileName"] in got.headers["content-disposition"]
            if storage == "local":  # MinIO adds it too; S3's presigned GETs cannot ask for it
                assert got.headers["x-content-type-options"] == "nosniff"
        assert got.content == b"sku\nA-1\n"

    async def test_bytes_of_the_wrong_size_are_refused_and_the_upload_can_be_repeated(
        self, api: httpx.AsyncClient
    ) -> None:
        ticket = await new_file(api, size=10)
        file_id = ticket["file"]["id"]
        first = await upload(api, ticket, b"0123")
        if first.status_code == 200:  # S3 took the bytes; the check runs on completion
            first = await api.post(f"{FILES}/{file_id}/complete", headers=ALICE)
        assert_problem(first, 422)
        assert (await api.get(f"{FILES}/{file_id}", headers=ALICE)).json()["status"] == "pending"
        assert (await upload(api, ticket, b"0123456789")).status_code == 200
        done = await api.post(f"{FILES}/{file_id}/complete", headers=ALICE)
        assert done.json()["status"] == "ready"

    async def test_bytes_of_another_sha256_than_announced_are_deleted_and_can_be_sent_again(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        good, bad = b"sku,name\nA-1,Tea\n", b"sku,name\nA-1,Tee\n"
        ticket = await new_file(api, sha256=sha256(good).upper(), size=len(good))
        file_id = ticket["file"]["id"]
        refused = await upload(api, ticket, bad)
        if refused.status_code == 200:  # S3 took the bytes; the check runs on completion
            refused = await api.post(f"{FILES}/{file_id}/complete", headers=ALICE)
        problem = assert_problem(refused, 422)
        assert problem["errors"][0]["field"] == "sha256"
        assert sha256(bad) in problem["detail"]
        assert sha256(good) in problem["detail"]
        assert not resources.store.exists(await stored_key(resources, file_id))
        pending = (await api.get(f"{FILES}/{file_id}", headers=ALICE)).json()
        assert (pending["status"], pending["sha256"]) == ("pending", sha256(good))
        assert (await upload(api, ticket, good)).status_code == 200
        done = await api.post(f"{FILES}/{file_id}/complete", headers=ALICE)
        assert (done.json()["status"], done.json()["sha256"]) == ("ready", sha256(good))
        assert (await download(api, f"{FILES}/{file_id}/download", ALICE)).content == good

    @pytest.mark.parametrize("storage", ["s3"])  # local uploads are refused as they stream in
    async def test_an_s3_upload_over_the_limit_is_413_on_completion_and_deleted(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        ticket = await new_file(api)  # no size announced: S3 takes whatever is PUT
        file_id = ticket["file"]["id"]
        assert (await upload(api, ticket, b"x" * (LIMIT + 1))).status_code == 200
        key = await stored_key(resources, file_id)
        assert resources.store.exists(key)
        problem = assert_problem(
            await api.post(f"{FILES}/{file_id}/complete", headers=ALICE), 413, "file-too-large"
        )
        assert problem["detail"] == (
            f"the file has {LIMIT + 1} bytes; files are limited to {LIMIT} bytes"
        )
        assert problem["errors"][0]["field"] == "size"
        assert not resources.store.exists(key)
        file = (await api.get(f"{FILES}/{file_id}", headers=ALICE)).json()
        assert (file["status"], file["size"], file["sha256"]) == ("pending", None, None)

    async def test_a_pending_file_has_no_download_yet(self, api: httpx.AsyncClient) -> None:
        ticket = await new_file(api)
        file_id = ticket["file"]["id"]
        assert_problem(await api.get(f"{FILES}/{file_id}/download", headers=ALICE), 409)
        assert_problem(await api.post(f"{FILES}/{file_id}/complete", headers=ALICE), 409)


@pytest.mark.parametrize("storage", ["local"])
class TestLocalSignedUrls:
    """The content routes of the local store: the signature is the only authority."""

    async def test_an_upload_beyond_the_size_limit_is_413_and_stores_nothing(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        ticket = await new_file(api)

        async def body() -> AsyncIterator[bytes]:  # streamed: no Content-Length to refuse early
            for _ in range(LIMIT // MIB + 1):
                yield b"x" * MIB

        response = await upload(api, ticket, body())
        assert_problem(response, 413, "file-too-large")
        response = await upload(api, ticket, b"x" * (LIMIT + 1))  # with Content-Length
        problem = assert_problem(response, 413, "file-too-large")
        assert problem["detail"] == (
            f"the file has {LIMIT + 1} bytes; files are limited to {LIMIT} bytes"
        )
        store = resources.store
        assert isinstance(store, LocalFileStore)
        assert [p for p in store.root.rglob("*") if p.is_file()] == []
        assert (await api.get(f"{FILES}/{ticket['file']['id']}", headers=ALICE)).json()[
            "status"
        ] == "pending"

    async def test_a_put_with_another_content_type_is_415_and_stores_nothing(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        ticket = await new_file(api)  # products.csv: text/csv
        for sent in ("application/x-www-form-urlencoded", "application/json", "text/csv2"):
            response = await api.put(
                ticket["uploadUrl"], content=b"sku\nA-1\n", headers={"Content-Type": sent}
            )
            problem = assert_problem(response, 415, "unsupported-media-type")
            assert problem["detail"] == (
                f"this upload URL takes Content-Type text/csv (see uploadHeaders), not {sent}"
            )
        store = resources.store
        assert isinstance(store, LocalFileStore)
        assert [p for p in store.root.rglob("*") if p.is_file()] == []
        file_id = ticket["file"]["id"]
        assert (await api.get(f"{FILES}/{file_id}", headers=ALICE)).json()["status"] == "pending"
        # Parameters and case aside, the declared type is taken.
        same = {"Content-Type": "Text/CSV; charset=utf-8"}
        response = await api.put(ticket["uploadUrl"], content=b"sku\nA-1\n", headers=same)
        assert response.status_code == 200, response.text
        assert response.json()["sha256"] == sha256(b"sku\nA-1\n")

    async def test_a_put_without_content_type_is_taken(self, api: httpx.AsyncClient) -> None:
        ticket = await new_file(api)
        response = await api.put(ticket["uploadUrl"], content=b"sku\nA-1\n")
        assert "content-type" not in response.request.headers
        assert response.status_code == 200, response.text
        assert (response.json()["status"], response.json()["sha256"]) == (
            "ready",
            sha256(b"sku\nA-1\n"),
        )

    async def test_a_tampered_link_is_403(self, api: httpx.AsyncClient) -> None:
        ticket = await new_file(api)
        url = ticket["uploadUrl"]
        split = urlsplit(url)
        query = {k: v[0] for k, v in parse_qs(split.query).items()}
        for changed in (
            url.replace("signature=" + query["signature"], "signature=" + "0" * 64),
            url.replace("expires=" + query["expires"], f"expires={int(query['expires']) + 60}"),
            url.replace("/products.csv?", "/other.csv?"),
        ):
            response = await api.put(changed, content=b"data")
            assert_problem(response, 403, "invalid-signature")
        done = await uploaded(api, b"data")
        link = (await api.get(f"{FILES}/{done['id']}/download", headers=ALICE)).json()
        tampered = link["downloadUrl"].replace("name=products.csv", "name=page.html")
        assert_problem(await api.get(tampered), 403, "invalid-signature")
        as_upload = link["downloadUrl"]  # a download link does not accept an upload
        assert_problem(await api.put(as_upload, content=b"evil"), 403, "invalid-signature")

    async def test_an_expired_link_is_403(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        done = await uploaded(api, b"data")
        store = resources.store
        assert isinstance(store, LocalFileStore)
        link = (await api.get(f"{FILES}/{done['id']}/download", headers=ALICE)).json()
        key = urlsplit(link["downloadUrl"]).path.rsplit("/content/", 1)[1]
        old = store.signer.url("GET", key, expires_in=-1, name="products.csv")
        assert_problem(await api.get(old), 403, "expired-signature")

    async def test_an_upload_link_works_once(self, api: httpx.AsyncClient) -> None:
        ticket = await new_file(api)
        assert (await upload(api, ticket, b"first")).status_code == 200
        assert_problem(await upload(api, ticket, b"second"), 409)

    async def test_a_traversal_key_is_refused(self, api: httpx.AsyncClient) -> None:
        for path in ("../../etc/passwd", "a/%2e%2e/%2e%2e/etc/passwd", "%00"):
            response = await api.get(f"{FILES}/content/{path}?expires=9999999999&signature=x")
            assert response.status_code in (403, 404, 422), response.text
            assert response.headers["content-type"].startswith("application/problem+json")


class TestOwnership:
    async def test_another_users_file_is_404_everywhere(self, api: httpx.AsyncClient) -> None:
        file_id = (await uploaded(api, b"alice's"))["id"]
        for method, path in (
            ("GET", f"{FILES}/{file_id}"),
            ("GET", f"{FILES}/{file_id}/download"),
            ("POST", f"{FILES}/{file_id}/complete"),
        ):
            assert_problem(await api.request(method, path, headers=BOB), 404, "not-found")
        assert (await api.get(f"{FILES}/{file_id}", headers=ADMIN)).status_code == 200
        assert_problem(await api.get(f"{FILES}/{uuid4()}", headers=ALICE), 404, "not-found")

    @pytest.mark.parametrize("storage", ["local"])  # nothing here depends on the store
    async def test_lists_are_per_owner_newest_first_and_paged(self, api: httpx.AsyncClient) -> None:
        mine = [(await new_file(api, fileName=f"{n}.csv"))["file"]["id"] for n in range(3)]
        theirs = (await new_file(api, BOB))["file"]["id"]
        first = (await api.get(FILES, params={"pageSize": 2}, headers=ALICE)).json()
        second = (await api.get(FILES, params={"pageSize": 2, "page": 2}, headers=ALICE)).json()
        assert (first["total"], first["page"], first["pageSize"]) == (3, 1, 2)
        assert {f["id"] for f in first["items"] + second["items"]} == set(mine)
        everyone = (await api.get(FILES, headers=ADMIN)).json()
        assert {f["id"] for f in everyone["items"]} == {*mine, theirs}
        assert_problem(await api.get(FILES, params={"pageSize": 101}, headers=ALICE), 422)


class TestTaskFiles:
    async def test_a_task_with_a_file_name_answers_with_an_upload_url(
        self, api: httpx.AsyncClient, resources: Resources, storage: str
    ) -> None:
        body = {"taskType": "import", "entityType": "product", "fileName": "products.csv"}
        response = await api.post(TASKS, json=body, headers=ALICE)
        assert response.status_code == 201, response.text
        task = response.json()
        assert task["uploadUrl"]
        assert task["uploadExpiresAt"]
        assert task["uploadHeaders"] == put_headers(storage, "text/csv")
        assert task["status"] == "waiting"  # it never starts before its input is complete
        assert task["fileSize"] is None  # nothing announced
        file = (await api.get(f"{FILES}/{task['inputFileId']}", headers=ALICE)).json()
        assert (file["taskId"], file["purpose"], file["status"]) == (task["id"], "input", "pending")
        data = b"sku,name\nA-1,Tea\n"
        put = await transfer(
            api, "PUT", task["uploadUrl"], content=data, headers=task["uploadHeaders"]
        )
        assert put.status_code == 200
        done = await api.post(f"{FILES}/{file['id']}/complete", headers=ALICE)
        assert (done.json()["status"], done.json()["size"]) == ("ready", len(data))
        after = (await api.get(f"{TASKS}/{task['id']}", headers=ALICE)).json()
        assert (after["status"], after["fileSize"]) == ("pending", len(data))  # from the upload
        assert "uploadUrl" not in after
        assert await event_types(api, task["id"]) == ["waiting", "created"]
        assert await count(resources, files_table) == 1

    async def test_the_embedded_worker_runs_the_task_once_its_input_is_uploaded(
        self, embedded: httpx.AsyncClient
    ) -> None:
        body = {"taskType": "noop", "fileName": "input.jsonl"}
        task = (await embedded.post(TASKS, json=body, headers=ALICE)).json()
        headers = task["uploadHeaders"]
        put = await transfer(embedded, "PUT", task["uploadUrl"], content=b"{}\n", headers=headers)
        assert put.status_code == 200
        await embedded.post(f"{FILES}/{task['inputFileId']}/complete", headers=ALICE)

        async def completed() -> bool:
            got = await embedded.get(f"{TASKS}/{task['id']}", headers=ALICE)
            return bool(got.json()["status"] == "completed")

        await wait_until(completed, timeout=10)
        kinds = await event_types(embedded, task["id"])
        assert kinds == ["waiting", "created", "started", "completed"]

    @pytest.mark.parametrize("storage", ["local"])  # nothing here depends on the store
    async def test_a_replayed_create_signs_the_same_input_file_again(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        body = {"taskType": "import", "entityType": "product", "fileName": "products.csv"}
        headers = {**ALICE, "Idempotency-Key": "import-1"}
        first = await api.post(TASKS, json=body, headers=headers)
        again = await api.post(TASKS, json=body, headers=headers)
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json()["id"] == first.json()["id"]
        assert again.json()["inputFileId"] == first.json()["inputFileId"]
        assert again.json()["uploadUrl"]
        assert await count(resources, files_table) == 1

    @pytest.mark.parametrize("storage", ["local"])  # nothing here depends on the store
    async def test_a_task_without_a_file_name_has_no_upload(self, api: httpx.AsyncClient) -> None:
        task = await create(api)
        assert task["uploadUrl"] is None
        assert task["inputFileId"] is None

    @pytest.mark.parametrize("storage", ["local"])  # nothing here depends on the store
    async def test_another_users_file_cannot_be_a_tasks_input_nor_told_from_no_file(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        bobs, nobodys = (await new_file(api, BOB))["file"]["id"], str(uuid4())
        body = {"taskType": "import", "entityType": "product", "inputFileId": bobs}
        theirs = await api.post(TASKS, json=body, headers=ALICE)
        problem = assert_problem(theirs, 422)
        assert [e["field"] for e in problem["errors"]] == ["inputFileId"]
        missing = await api.post(TASKS, json={**body, "inputFileId": nobodys}, headers=ALICE)
        # The same answer, but for the id it names: no way to learn which ids exist.
        assert missing.status_code == theirs.status_code
        assert missing.headers["content-type"] == theirs.headers["content-type"]
        assert missing.json() == json.loads(theirs.text.replace(bobs, nobodys))
        assert await count(resources, tasks_table) == 0
        mine = (await new_file(api))["file"]["id"]
        ok = await api.post(TASKS, json={**body, "inputFileId": mine}, headers=ALICE)
        assert ok.status_code == 201
        external = await api.post(TASKS, json={**body, "inputFileId": "crm-42"}, headers=ALICE)
        assert external.status_code == 201  # not a file id: an external reference

    async def test_download_is_404_until_the_task_registers_its_output(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        task = await create(api, taskType="export", entityType="order")
        path = f"{TASKS}/{task['id']}/download"
        problem = assert_problem(await api.get(path, headers=ALICE), 404, "not-found")
        assert "no output file" in problem["detail"]
        key = f"tasks/{task['id']}/commandes été.csv"  # quoted in local URLs, keyed as is
        with resources.store.open_write(key, "text/csv") as stream:
            stream.write(b"id,total\n1,9.99\n")
        async with resources.unit() as uow:
            output = await outputs.register_output(
                uow,
                resources.store,
                UUID(task["id"]),
                key,
                file_name="orders.csv",
                content_type="text/csv",
                policy=FilePolicy.from_settings(resources.settings),
                now=utcnow(),
            )
        assert (output.purpose, output.size, output.owner) == (FilePurpose.OUTPUT, 16, "alice")
        assert output.sha256 == sha256(b"id,total\n1,9.99\n")  # read back from the store
        got = await download(api, path, ALICE)
        assert got.content == b"id,total\n1,9.99\n"
        refreshed = (await api.get(f"{TASKS}/{task['id']}", headers=ALICE)).json()
        assert refreshed["outputFileId"] == str(output.id)
        assert_problem(await api.get(path, headers=BOB), 404)
        report = await api.get(path, params={"file": "errorReport"}, headers=ALICE)
        assert "no error report" in assert_problem(report, 404)["detail"]
        assert_problem(await api.get(path, params={"file": "other"}, headers=ALICE), 422)


class TestRetention:
    async def test_expired_files_lose_their_bytes_then_their_records(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        old, kept = (await uploaded(api, b"old"))["id"], (await uploaded(api, b"kept"))["id"]
        async with session_scope(resources.sessionmaker) as session:
            await session.execute(
                update(files_table)
                .where(files_table.c.id == UUID(old))
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
            key = (await FileRepository(session).get(UUID(old))).key  # type: ignore[union-attr]
        async with resources.unit() as uow:
            purged = await file_retention.purge_expired(uow, resources.store, now=utcnow())
        assert purged == 1
        assert not resources.store.exists(key)
        assert_problem(await api.get(f"{FILES}/{old}", headers=ALICE), 404)
        assert (await download(api, f"{FILES}/{kept}/download", ALICE)).content == b"kept"
