"""Tasks waiting for their input file: submit, detection, expiry; multipart imports; readiness.

On both databases and both stores (local, and a real S3-compatible server): bytes PUT to a
presigned S3 URL bypass the API, so the task starts on POST /tasks/{id}/submit or when the
check-uploads job finds the object; an upload that never comes fails the task.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import update

from service.bootstrap import Resources
from service.clock import utcnow
from service.config import Settings
from service.db.engine import session_scope
from service.db.repositories.files import FileRepository
from service.db.tables import files_table, tasks_table
from service.storage.local import LocalFileStore
from service.usecases.content_types import IMPORT_CONTENT_TYPES
from service.usecases.file_retention import STALE_TEMPORARIES
from tests.fixtures.app import make_settings, user, wait_until
from tests.fixtures.database import ROOT
from tests.fixtures.s3 import transfer
from tests.integration.api.support import BASE as TASKS, assert_problem, count, event_types
from worker.jobs import JOBS

BULK = "/api/v1/operations/bulk"
ALICE = user("alice")
BOB = user("bob")
LIMIT = 64 * 1024
CSV = b"sku,name,price,currency\nA-1,Shoe,12.50,EUR\nA-2,Hat,3.00,EUR\n"


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"files_max_bytes": LIMIT}


async def waiting_import(api: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    created = await api.post(
        TASKS,
        json={"taskType": "import", "entityType": "product", "fileName": "p.csv", **body},
        headers=ALICE,
    )
    assert created.status_code == 201, created.text
    task: dict[str, Any] = created.json()
    assert task["status"] == "waiting"
    return task


async def put(api: httpx.AsyncClient, task: dict[str, Any], data: bytes) -> httpx.Response:
    return await transfer(
        api, "PUT", task["uploadUrl"], content=data, headers=task["uploadHeaders"]
    )


async def status(api: httpx.AsyncClient, task_id: str) -> str:
    return str((await api.get(f"{TASKS}/{task_id}", headers=ALICE)).json()["status"])


async def run_job(resources: Resources, job: str) -> str:
    return await JOBS[job](resources)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def input_file(
    api: httpx.AsyncClient, resources: Resources, task: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    """The task's input file as its owner sees it, and its storage key."""
    file = await api.get(f"/api/v1/operations/files/{task['inputFileId']}", headers=ALICE)
    async with session_scope(resources.sessionmaker) as session:
        row = await FileRepository(session).get(UUID(task["inputFileId"]))
    assert row is not None
    return file.json(), str(row.key)


class TestSubmit:
    async def test_submit_starts_the_task_once_its_bytes_are_there(
        self, api: httpx.AsyncClient, storage: str
    ) -> None:
        task = await waiting_import(api)
        submit = f"{TASKS}/{task['id']}/submit"
        early = assert_problem(await api.post(submit, headers=ALICE), 409)
        assert "not been uploaded" in early["detail"]
        assert await status(api, task["id"]) == "waiting"

        assert (await put(api, task, CSV)).status_code == 200
        # The service receives local uploads itself; S3 uploads wait for the client's word.
        assert await status(api, task["id"]) == ("pending" if storage == "local" else "waiting")

        submitted = await api.post(submit, headers=ALICE)
        assert submitted.status_code == 200, submitted.text
        assert submitted.json()["status"] == "pending"
        again = await api.post(submit, headers=ALICE)
        assert (again.status_code, again.json()["status"]) == (200, "pending")
        assert await event_types(api, task["id"], ALICE) == ["waiting", "created"]
        file = await api.get(f"/api/v1/operations/files/{task['inputFileId']}", headers=ALICE)
        assert (file.json()["status"], file.json()["size"]) == ("ready", len(CSV))
        assert file.json()["sha256"] == sha256(CSV)

    async def test_bytes_of_another_size_than_announced_are_refused(
        self, api: httpx.AsyncClient, storage: str
    ) -> None:
        task = await waiting_import(api, fileSize=len(CSV) + 1)
        response = await put(api, task, CSV)
        if storage == "local":  # refused as they arrive
            assert_problem(response, 422)
        else:  # S3 takes them; the submit finds the wrong size and deletes them
            assert response.status_code == 200
            problem = assert_problem(
                await api.post(f"{TASKS}/{task['id']}/submit", headers=ALICE), 422
            )
            assert problem["errors"][0]["field"] == "size"
        assert await status(api, task["id"]) == "waiting"

    async def test_bytes_of_another_sha256_than_announced_are_refused_and_deleted(
        self, api: httpx.AsyncClient, resources: Resources, storage: str
    ) -> None:
        task = await waiting_import(api, fileSha256=sha256(CSV).upper())
        other = CSV.replace(b"Shoe", b"Shoo")
        response = await put(api, task, other)
        if storage == "s3":  # S3 takes them; the submit hashes them and deletes them
            assert response.status_code == 200
            response = await api.post(f"{TASKS}/{task['id']}/submit", headers=ALICE)
        problem = assert_problem(response, 422)
        assert problem["errors"][0]["field"] == "sha256"
        assert f"is {sha256(other)} but {sha256(CSV)} was announced" in problem["detail"]
        file, key = await input_file(api, resources, task)
        assert (file["status"], file["sha256"]) == ("pending", sha256(CSV))
        assert not resources.store.exists(key)
        assert await status(api, task["id"]) == "waiting"
        assert (await put(api, task, CSV)).status_code == 200  # the right bytes are taken
        submitted = await api.post(f"{TASKS}/{task['id']}/submit", headers=ALICE)
        assert submitted.json()["status"] == "pending"

    @pytest.mark.parametrize("storage", ["s3"])  # local uploads are refused as they stream in
    async def test_an_s3_upload_over_the_limit_is_413_at_submit_and_deleted(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        task = await waiting_import(api)
        assert (await put(api, task, b"x" * (LIMIT + 1))).status_code == 200
        problem = assert_problem(
            await api.post(f"{TASKS}/{task['id']}/submit", headers=ALICE), 413, "file-too-large"
        )
        assert problem["detail"] == (
            f"the file has {LIMIT + 1} bytes; files are limited to {LIMIT} bytes"
        )
        assert problem["errors"][0]["field"] == "size"
        file, key = await input_file(api, resources, task)
        assert not resources.store.exists(key)
        assert (file["status"], file["size"]) == ("pending", None)
        assert await status(api, task["id"]) == "waiting"  # the client was told; it may retry

    async def test_only_the_owner_submits_and_only_tasks_with_an_input_file(
        self, api: httpx.AsyncClient
    ) -> None:
        task = await waiting_import(api)
        assert_problem(await api.post(f"{TASKS}/{task['id']}/submit", headers=BOB), 404)
        plain = await api.post(TASKS, json={"taskType": "noop"}, headers=ALICE)
        refused = assert_problem(
            await api.post(f"{TASKS}/{plain.json()['id']}/submit", headers=ALICE), 409
        )
        assert "no input file" in refused["detail"]


class TestCheckUploads:
    async def test_an_unannounced_upload_is_found_and_the_task_starts(
        self, api: httpx.AsyncClient, resources: Resources, storage: str
    ) -> None:
        task = await waiting_import(api)
        assert "0 uploads detected" in await run_job(resources, "check-uploads")
        assert await status(api, task["id"]) == "waiting"
        assert (await put(api, task, CSV)).status_code == 200
        detail = await run_job(resources, "check-uploads")
        assert await status(api, task["id"]) == "pending"
        # Local uploads released the task already; only S3 needed the job.
        assert detail.startswith("1 uploads" if storage == "s3" else "0 uploads")
        file, _ = await input_file(api, resources, task)
        assert (file["status"], file["size"], file["sha256"]) == ("ready", len(CSV), sha256(CSV))

    @pytest.mark.parametrize("storage", ["s3"])  # only S3 takes bytes the service would refuse
    @pytest.mark.parametrize(
        ("announced", "sent", "reason"),
        [
            (
                {},
                b"x" * (LIMIT + 1),
                f"the file has {LIMIT + 1} bytes; files are limited to {LIMIT} bytes",
            ),
            (
                {"fileSha256": sha256(CSV)},
                CSV.upper(),
                f"the upload's SHA-256 is {sha256(CSV.upper())} but {sha256(CSV)} was announced",
            ),
        ],
        ids=["too-large", "other-sha256"],
    )
    async def test_an_upload_it_must_refuse_is_deleted_and_fails_its_task_saying_why(
        self,
        api: httpx.AsyncClient,
        resources: Resources,
        announced: dict[str, Any],
        sent: bytes,
        reason: str,
    ) -> None:
        task, fresh = await waiting_import(api, **announced), await waiting_import(api)
        assert (await put(api, task, sent)).status_code == 200
        assert await run_job(resources, "check-uploads") == (
            "0 uploads detected, 1 refused, 0 waiting tasks expired"
        )
        failed = (await api.get(f"{TASKS}/{task['id']}", headers=ALICE)).json()
        assert failed["status"] == "failed"
        assert failed["errorMessage"] == (
            f"the input file 'p.csv' was refused: {reason}; "
            "create the task again and upload the file"
        )
        assert await event_types(api, task["id"], ALICE) == ["waiting", "failed"]
        file, key = await input_file(api, resources, task)
        assert (file["status"], file["size"]) == ("pending", None)
        assert not resources.store.exists(key)
        assert await status(api, fresh["id"]) == "waiting"
        assert await run_job(resources, "check-uploads") == (
            "0 uploads detected, 0 refused, 0 waiting tasks expired"
        )

    async def test_a_task_whose_upload_never_comes_fails_with_a_clear_message(
        self, api: httpx.AsyncClient, resources: Resources, settings: Settings
    ) -> None:
        old, fresh = await waiting_import(api), await waiting_import(api)
        async with session_scope(resources.sessionmaker) as session:
            await session.execute(
                update(tasks_table)
                .where(tasks_table.c.id == UUID(old["id"]))
                .values(created_at=utcnow() - timedelta(seconds=settings.upload_wait_seconds + 1))
            )
        assert await run_job(resources, "check-uploads") == (
            "0 uploads detected, 0 refused, 1 waiting tasks expired"
        )
        expired = (await api.get(f"{TASKS}/{old['id']}", headers=ALICE)).json()
        assert expired["status"] == "failed"
        assert expired["errorMessage"] == (
            "the input file 'p.csv' was not uploaded within 1 hour of creating the task; "
            "create the task again and upload the file"
        )
        assert expired["completedAt"] is not None
        assert await event_types(api, old["id"], ALICE) == ["waiting", "failed"]
        assert await status(api, fresh["id"]) == "waiting"
        # A second run (another replica's tick) changes nothing.
        assert await run_job(resources, "check-uploads") == (
            "0 uploads detected, 0 refused, 0 waiting tasks expired"
        )

    def test_the_wait_cannot_be_shorter_than_the_upload_url(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="OPS_UPLOAD_WAIT_SECONDS"):
            Settings(data_dir=tmp_path, files_url_seconds=900, upload_wait_seconds=600)


class TestCleanupOldFiles:
    async def test_the_job_deletes_expired_files_and_their_bytes(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        task = await waiting_import(api)
        assert (await put(api, task, CSV)).status_code == 200
        file_id = UUID(task["inputFileId"])
        async with session_scope(resources.sessionmaker) as session:
            key = (await FileRepository(session).get(file_id)).key  # type: ignore[union-attr]
            await session.execute(
                update(files_table)
                .where(files_table.c.id == file_id)
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
        assert resources.store.exists(key)
        assert await run_job(resources, "cleanup-old-files") == (
            "1 expired files deleted, 0 stale temporaries removed"
        )
        assert not resources.store.exists(key)
        assert await count(resources, files_table) == 0
        assert await run_job(resources, "cleanup-old-files") == (
            "0 expired files deleted, 0 stale temporaries removed"
        )

    @pytest.mark.parametrize("storage", ["local"])  # S3's leftovers: tests/integration/storage
    async def test_the_job_removes_what_a_killed_writer_left_and_keeps_live_writes(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        store = resources.store
        assert isinstance(store, LocalFileStore)
        killed = await killed_writer(store.root, "tasks/t-1/export.csv")
        aged = utcnow() - STALE_TEMPORARIES - timedelta(minutes=1)
        os.utime(killed, (aged.timestamp(), aged.timestamp()))
        with store.open_write("tasks/t-2/export.csv", "text/csv") as live:
            live.write(b"id\n1\n")
            assert await run_job(resources, "cleanup-old-files") == (
                "0 expired files deleted, 1 stale temporaries removed"
            )
        assert not killed.exists()
        assert store.exists("tasks/t-2/export.csv")  # the live writer's file still landed
        assert [p.name for p in store.root.rglob("*") if p.is_file()] == ["export.csv"]


async def killed_writer(root: Path, key: str) -> Path:
    """The temporary file of a local store writer killed (SIGKILL) in the middle of its write."""
    code = (
        "import sys, time; from pathlib import Path;"
        "from service.storage.local import LocalFileStore;"
        "from service.storage.signing import UrlSigner;"
        "store = LocalFileStore(Path(sys.argv[1]), UrlSigner(b'k'));"
        "writer = store.open_write(sys.argv[2], 'text/csv'); stream = writer.__enter__();"
        "stream.write(b'id\\n1\\n'); stream.flush(); print('writing', flush=True); time.sleep(60)"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, str(root), key, stdout=asyncio.subprocess.PIPE, cwd=ROOT
    )
    assert process.stdout is not None
    assert await asyncio.wait_for(process.stdout.readline(), 30) == b"writing\n"
    process.kill()
    await process.wait()
    [left] = [p for p in root.rglob("*.part") if p.is_file()]
    assert left.name.startswith(".export.csv.")
    return left


def form(
    content: bytes = CSV, name: str = "products.csv", media: str = "text/csv", **fields: str
) -> dict[str, Any]:
    return {
        "files": {"file": (name, content, media)},
        "data": {"entityType": "product", **fields},
    }


ACCEPTED = ", ".join(sorted(IMPORT_CONTENT_TYPES))
IMPORT = {"taskType": "import", "entityType": "product", "fileName": "p.csv"}


@pytest.mark.parametrize("storage", ["local"])  # refused before anything is stored
class TestDeclaredInput:
    """What a client declares about an input file is checked before anything is created."""

    @pytest.mark.parametrize(
        ("path", "body"),
        [(TASKS, IMPORT), (f"{BULK}/import", {"entityType": "product", "fileName": "p.csv"})],
        ids=["tasks", "bulk-json"],
    )
    async def test_a_declared_file_size_over_the_limit_is_413_and_creates_nothing(
        self, api: httpx.AsyncClient, resources: Resources, path: str, body: dict[str, Any]
    ) -> None:
        response = await api.post(path, json={**body, "fileSize": LIMIT + 1}, headers=ALICE)
        problem = assert_problem(response, 413, "file-too-large")
        assert problem["detail"] == (
            f"the file has {LIMIT + 1} bytes; files are limited to {LIMIT} bytes"
        )
        assert problem["errors"] == [{"field": "fileSize", "reason": problem["detail"]}]
        assert await count(resources, tasks_table) == 0
        assert await count(resources, files_table) == 0

    @pytest.mark.parametrize(
        ("request_kwargs", "field", "refused"),
        [
            ({"json": {**IMPORT, "fileContentType": "application/pdf"}}, "fileContentType", None),
            (  # no type given: the one the name suggests is checked
                {"json": {**IMPORT, "fileName": "p.pdf", "params": {"format": "csv"}}},
                "fileContentType",
                "application/pdf",
            ),
            (
                {
                    "url": f"{BULK}/import",
                    "json": {
                        "entityType": "product",
                        "fileName": "p.csv",
                        "fileContentType": "image/png",
                    },
                },
                "fileContentType",
                None,
            ),
            ({"url": f"{BULK}/import", **form(media="image/png")}, "file", "image/png"),
        ],
        ids=["tasks", "tasks-guessed", "bulk-json", "bulk-multipart"],
    )
    async def test_an_import_of_a_type_it_cannot_read_is_415_and_creates_nothing(
        self,
        api: httpx.AsyncClient,
        resources: Resources,
        request_kwargs: dict[str, Any],
        field: str,
        refused: str | None,
    ) -> None:
        kwargs = dict(request_kwargs)  # the parameter is shared by the dialects' runs
        url = kwargs.pop("url", TASKS)
        refused = refused or kwargs["json"]["fileContentType"]
        response = await api.post(url, headers=ALICE, **kwargs)
        problem = assert_problem(response, 415, "unsupported-media-type")
        assert problem["detail"] == f"an import reads {ACCEPTED}; not {refused}"
        assert problem["errors"] == [{"field": field, "reason": problem["detail"]}]
        assert await count(resources, tasks_table) == 0
        assert await count(resources, files_table) == 0

    async def test_import_types_are_compared_without_parameters_or_case(
        self, api: httpx.AsyncClient
    ) -> None:
        declared = "Application/X-NDJSON; charset=utf-8"
        task = await waiting_import(api, fileName="p.jsonl", fileContentType=declared)
        assert task["uploadHeaders"] == {"Content-Type": declared}
        line = b'{"sku": "A-1", "name": "Shoe", "price": "1.00", "currency": "EUR"}\n'
        sent = {"Content-Type": "application/x-ndjson"}
        put = await transfer(api, "PUT", task["uploadUrl"], content=line, headers=sent)
        assert put.status_code == 200, put.text
        assert await status(api, task["id"]) == "pending"

    async def test_other_tasks_and_plain_files_take_any_well_formed_type(
        self, api: httpx.AsyncClient
    ) -> None:
        body = {"taskType": "noop", "fileName": "scan.pdf", "fileContentType": "application/pdf"}
        response = await api.post(TASKS, json=body, headers=ALICE)
        assert response.status_code == 201, response.text
        assert response.json()["uploadHeaders"] == {"Content-Type": "application/pdf"}


class TestMultipartImport:
    async def test_the_file_comes_with_the_request_and_the_import_runs(
        self, embedded: httpx.AsyncClient
    ) -> None:
        options = json.dumps({"mode": "upsert"})
        response = await embedded.post(
            f"{BULK}/import", headers=ALICE, **form(params=options, priority="high")
        )
        assert response.status_code == 201, response.text
        task = response.json()
        assert task["uploadUrl"] is None
        assert (task["status"], task["priority"], task["fileName"]) in {
            ("pending", "high", "products.csv"),
            ("processing", "high", "products.csv"),
            ("completed", "high", "products.csv"),
        }
        assert task["params"] == {"mode": "upsert"}

        async def done() -> dict[str, Any] | None:
            body = (await embedded.get(f"{BULK}/operations/{task['id']}", headers=ALICE)).json()
            return body if body["status"] == "completed" else None

        finished = await wait_until(done, timeout=30)
        assert (finished["processedItems"], finished["succeededItems"]) == (2, 2)
        file = await embedded.get(f"/api/v1/operations/files/{task['inputFileId']}", headers=ALICE)
        assert (file.json()["status"], file.json()["size"]) == ("ready", len(CSV))
        assert (file.json()["sha256"], file.json()["contentType"]) == (sha256(CSV), "text/csv")

    async def test_a_curl_like_part_is_taken_and_its_announced_sha256_checked(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        # curl -F file=@products.csv sends application/octet-stream; a fileSha256 field is
        # checked against the bytes, whatever its case.
        response = await api.post(
            f"{BULK}/import",
            headers=ALICE,
            **form(media="application/octet-stream", fileSha256=sha256(CSV).upper()),
        )
        assert response.status_code == 201, response.text
        task = response.json()
        assert task["status"] == "pending"
        file, _ = await input_file(api, resources, task)
        assert (file["contentType"], file["sha256"]) == ("application/octet-stream", sha256(CSV))

    async def test_a_part_of_another_sha256_than_announced_is_422_and_not_kept(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        response = await api.post(
            f"{BULK}/import", headers=ALICE, **form(fileSha256=sha256(b"other"))
        )
        problem = assert_problem(response, 422)
        assert problem["errors"][0]["field"] == "sha256"
        [task] = (await api.get(TASKS, headers=ALICE)).json()["items"]
        file, key = await input_file(api, resources, task)
        assert (task["status"], file["status"]) == ("waiting", "pending")
        assert not resources.store.exists(key)

    async def test_a_repeated_idempotency_key_returns_the_first_task(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        key = {"Idempotency-Key": "import-once"}
        first = await api.post(f"{BULK}/import", headers=ALICE | key, **form())
        second = await api.post(f"{BULK}/import", headers=ALICE | key, **form())
        assert (first.status_code, second.status_code) == (201, 200)
        assert second.json()["id"] == first.json()["id"]
        assert second.json()["status"] == "pending"
        assert await count(resources, files_table) == 1

    @pytest.mark.parametrize(
        ("request_parts", "field"),
        [
            ({"data": {"entityType": "product"}}, "file"),
            (form(entityType="planet"), "entityType"),
            (form(params="[1, 2]"), "params"),
            (form(params="{not json"), "params"),
            (form(priority="asap"), "priority"),
        ],
    )
    async def test_bad_fields_are_422_problems_and_create_nothing(
        self,
        api: httpx.AsyncClient,
        resources: Resources,
        request_parts: dict[str, Any],
        field: str,
    ) -> None:
        if "files" not in request_parts:  # a form without a file part is still multipart
            request_parts = {**request_parts, "files": {"other": ("x.txt", b"x", "text/plain")}}
        response = await api.post(f"{BULK}/import", headers=ALICE, **request_parts)
        problem = assert_problem(response, 422)
        assert problem["errors"][0]["field"].split(".")[0] == field
        assert await count(resources, tasks_table) == 0
        assert await count(resources, files_table) == 0

    async def test_a_file_over_the_limit_is_413_and_creates_nothing(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        response = await api.post(
            f"{BULK}/import", headers=ALICE, **form(content=b"x" * (LIMIT + 1))
        )
        problem = assert_problem(response, 413, "file-too-large")
        assert problem["detail"] == (
            f"the file has {LIMIT + 1} bytes; files are limited to {LIMIT} bytes"
        )
        assert problem["errors"] == [{"field": "file", "reason": problem["detail"]}]
        assert await count(resources, tasks_table) == 0
        assert await count(resources, files_table) == 0

    async def test_the_api_description_offers_both_bodies(self, api: httpx.AsyncClient) -> None:
        spec = (await api.get("/openapi.json")).json()
        body = spec["paths"][f"{BULK}/import"]["post"]["requestBody"]["content"]
        assert set(body) == {"application/json", "multipart/form-data"}
        assert body["multipart/form-data"]["schema"]["required"] == ["file", "entityType"]
        assert "entityType" in body["application/json"]["schema"]["properties"]

    async def test_another_body_type_is_415(self, api: httpx.AsyncClient) -> None:
        response = await api.post(
            f"{BULK}/import",
            content=b"entityType=product",
            headers=ALICE | {"Content-Type": "text/plain"},
        )
        assert_problem(response, 415)

    async def test_the_file_name_is_kept_for_people_but_not_used_as_a_path(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        response = await api.post(
            f"{BULK}/import", headers=ALICE, **form(name="../../etc/passwd.csv")
        )
        assert response.status_code == 201, response.text
        async with session_scope(resources.sessionmaker) as session:
            row = await FileRepository(session).get(UUID(response.json()["inputFileId"]))
        assert row is not None
        assert row.file_name == "../../etc/passwd.csv"
        assert row.key.endswith("/passwd.csv")
        assert ".." not in row.key.split("/")


class TestReadiness:
    async def test_ready_names_the_store(self, api: httpx.AsyncClient, storage: str) -> None:
        response = await api.get("/health/ready")
        assert response.status_code == 200
        assert response.json()["checks"]["storage"] == {"status": "up", "kind": storage}
        assert "sidecar" not in response.json()["checks"]  # in-process events: no sidecar

    async def test_not_ready_when_the_store_cannot_be_used(
        self, database_url: str, tmp_path: Path, storage: str
    ) -> None:
        from service.app import create_app

        blocker = tmp_path / "not-a-directory"
        blocker.write_text("")
        overrides: dict[str, Any] = (
            {"files_dir": blocker / "files"}
            if storage == "local"
            else {
                "storage": "s3",
                "s3_endpoint_url": "http://127.0.0.1:9",  # discard port: nothing listens
                "s3_access_key_id": "k",
                "s3_secret_access_key": "s",
                "s3_max_attempts": 1,
            }
        )
        app = create_app(make_settings(database_url, tmp_path, **overrides))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                response = await client.get("/health/ready")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "unavailable"
        assert body["checks"]["database"]["status"] == "up"
        assert body["checks"]["storage"]["status"] == "down"
        assert body["checks"]["storage"]["error"]
