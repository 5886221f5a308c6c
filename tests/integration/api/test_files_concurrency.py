"""One upload of a file at a time, and its record describes the bytes stored.

On both databases and both stores: parallel PUTs through a real HTTP server (local store) or
straight to the S3 server, a multipart import repeated while the first one's bytes are being
stored, a stalled upload taken over, and a client that hangs up in the middle of its body.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Iterator
from datetime import datetime, timedelta
from typing import Any, BinaryIO
from urllib.parse import urlsplit
from uuid import UUID

import httpx
import pytest
from sqlalchemy import update

from service.bootstrap import Resources
from service.clock import utcnow
from service.db.engine import session_scope
from service.db.repositories.files import FileRepository
from service.db.tables import files_table, tasks_table
from service.storage.base import FileStore
from service.storage.local import LocalFileStore
from service.usecases.uploads import receipt as receiving
from service.usecases.uploads.receipt import CLAIM_STALE
from tests.fixtures.app import user, wait_until
from tests.fixtures.serving import serving
from tests.integration.api.support import BASE as TASKS, assert_problem, count

FILES = "/api/v1/operations/files"
BULK = "/api/v1/operations/bulk"
ALICE = user("alice")
MIB = 1024 * 1024


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"files_max_bytes": 8 * MIB}


@pytest.fixture
async def server(api: httpx.AsyncClient) -> AsyncIterator[str]:
    """The test's app behind a real HTTP server on loopback (uvicorn, in this event loop), whose
    own log records reach caplog (no logging config of its own)."""
    async with serving(api.app) as url:  # type: ignore[attr-defined]  # its lifespan: `api`'s
        yield url


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def csv_file(n: int, rows: int = 4000) -> bytes:
    """A CSV of its own for each `n` (about 150 KiB: its upload takes several chunks)."""
    lines = (f"S-{n}-{i},Item {i} of upload {n},{i % 97}.50,EUR\n" for i in range(rows))
    return ("sku,name,price,currency\n" + "".join(lines)).encode()


async def trickle(data: bytes, pieces: int = 8) -> AsyncIterator[bytes]:
    """`data` in pieces with pauses between, so that parallel uploads overlap."""
    step = len(data) // pieces + 1
    for start in range(0, len(data), step):
        yield data[start : start + step]
        await asyncio.sleep(0.01)


async def file_row(resources: Resources, file_id: str) -> Any:
    async with session_scope(resources.sessionmaker) as session:
        row = await FileRepository(session).get(UUID(file_id))
    assert row is not None
    return row


def stored(store: FileStore, key: str) -> bytes:
    with store.open_read(key) as stream:
        return stream.read()


async def new_upload(api: httpx.AsyncClient, via: str) -> tuple[dict[str, Any], str]:
    """An upload ticket (uploadUrl, uploadHeaders) and its file id: a plain file (POST /files)
    or the input of an import task (POST /tasks with a fileName)."""
    if via == "files":
        ticket = (await api.post(FILES, json={"fileName": "p.csv"}, headers=ALICE)).json()
        return ticket, ticket["file"]["id"]
    body = {"taskType": "import", "entityType": "product", "fileName": "p.csv"}
    task = (await api.post(TASKS, json=body, headers=ALICE)).json()
    return task, task["inputFileId"]


class TestParallelPuts:
    @pytest.mark.parametrize("via", ["files", "import"])
    async def test_one_put_is_taken_the_others_refused_and_the_record_is_its_bytes(
        self,
        api: httpx.AsyncClient,
        server: str,
        resources: Resources,
        storage: str,
        via: str,
    ) -> None:
        ticket, file_id = await new_upload(api, via)
        url, headers = ticket["uploadUrl"], ticket["uploadHeaders"]
        bodies = [csv_file(n) for n in range(6)]

        def put(body: bytes) -> Awaitable[httpx.Response]:
            if url.startswith("/"):  # local: through the real server, in overlapping pieces
                return client.put(server + url, content=trickle(body), headers=headers)
            return client.put(url, content=body, headers=headers)  # S3 wants a Content-Length

        async with httpx.AsyncClient(timeout=30) as client:
            answers = await asyncio.gather(*(put(body) for body in bodies))
        taken = [n for n, answer in enumerate(answers) if answer.status_code == 200]
        assert len(taken) == 1, [a.status_code for a in answers]
        for n, answer in enumerate(answers):
            if n == taken[0]:
                continue
            if storage == "local":
                assert_problem(answer, 409)
            else:  # S3's own answer to a second PUT of an only-create URL
                assert answer.status_code == 412, answer.text
        winner = bodies[taken[0]]

        # Confirmations racing each other (S3 needs one; local ones change nothing) agree.
        confirm = [f"{FILES}/{file_id}/complete"] * 2
        if via == "import":
            confirm.append(f"{TASKS}/{ticket['id']}/submit")
        confirmed = await asyncio.gather(*(api.post(path, headers=ALICE) for path in confirm))
        assert [c.status_code for c in confirmed] == [200] * len(confirm)

        row = await file_row(resources, file_id)
        assert stored(resources.store, row.key) == winner
        assert (row.status, row.size, row.sha256) == ("ready", len(winner), sha256(winner))
        assert row.upload_claim is None
        file = (await api.get(f"{FILES}/{file_id}", headers=ALICE)).json()
        assert (file["size"], file["sha256"]) == (len(winner), sha256(winner))
        if via == "import":
            task = (await api.get(f"{TASKS}/{ticket['id']}", headers=ALICE)).json()
            assert (task["status"], task["fileSize"]) == ("pending", len(winner))


class Gate:
    """Holds the first writer of a store before its first byte, until the test opens it.

    The store stays the real one; only the moment its first writer goes on is the test's.
    """

    def __init__(self, store: FileStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reached, self.opened = threading.Event(), threading.Event()
        original, first = store.open_write, [True]

        @contextlib.contextmanager
        def open_write(key: str, content_type: str) -> Iterator[BinaryIO]:
            with original(key, content_type) as stream:
                if first:  # runs in a worker thread (write_stream): the event loop goes on
                    first.clear()
                    self.reached.set()
                    self.opened.wait(30)
                yield stream

        monkeypatch.setattr(store, "open_write", open_write)

    async def wait(self) -> None:
        assert await asyncio.to_thread(self.reached.wait, 30), "no writer reached the gate"


def app_store(client: httpx.AsyncClient) -> FileStore:
    store: FileStore = client.app.state.resources.store  # type: ignore[attr-defined]
    return store


def form(content: bytes) -> dict[str, Any]:
    return {"files": {"file": ("p.csv", content, "text/csv")}, "data": {"entityType": "product"}}


class TestOneUploadAtATime:
    async def test_a_multipart_import_repeated_while_its_file_is_stored_is_409(
        self, api: httpx.AsyncClient, resources: Resources, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        gate, again = Gate(app_store(api), monkeypatch), {"Idempotency-Key": "import-once"}
        data = csv_file(1)
        first = asyncio.create_task(api.post(f"{BULK}/import", headers=ALICE | again, **form(data)))
        await gate.wait()
        repeat = await api.post(f"{BULK}/import", headers=ALICE | again, **form(data))
        problem = assert_problem(repeat, 409, "upload-in-progress")
        gate.opened.set()
        created = await first
        assert created.status_code == 201, created.text
        task = created.json()
        assert problem["fileId"] == task["inputFileId"]
        assert (task["status"], task["fileSize"]) == ("pending", len(data))
        later = await api.post(f"{BULK}/import", headers=ALICE | again, **form(data))
        assert (later.status_code, later.json()["id"]) == (200, task["id"])
        row = await file_row(resources, task["inputFileId"])
        assert stored(resources.store, row.key) == data
        assert (row.size, row.sha256) == (len(data), sha256(data))
        assert await count(resources, files_table) == 1

    @pytest.mark.parametrize("storage", ["local"])  # S3 upload URLs do not reach the service
    async def test_a_stalled_upload_is_taken_over_and_then_publishes_nothing(
        self, api: httpx.AsyncClient, resources: Resources, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        gate = Gate(app_store(api), monkeypatch)
        ticket, file_id = await new_upload(api, "import")
        url, headers = ticket["uploadUrl"], ticket["uploadHeaders"]
        stalled, late, taking = csv_file(1), csv_file(2), csv_file(3)
        first = asyncio.create_task(api.put(url, content=stalled, headers=headers))
        await gate.wait()
        assert_problem(await api.put(url, content=late, headers=headers), 409)
        long_ago = utcnow() - CLAIM_STALE - timedelta(seconds=1)
        await set_claimed_at(resources, file_id, long_ago)  # as if its process had died
        took = await api.put(url, content=taking, headers=headers)
        assert took.status_code == 200, took.text
        gate.opened.set()
        assert_problem(await first, 409)  # it lost its claim: its bytes are not published
        row = await file_row(resources, file_id)
        assert stored(resources.store, row.key) == taking
        assert (row.size, row.sha256) == (len(taking), sha256(taking))
        task = (await api.get(f"{TASKS}/{ticket['id']}", headers=ALICE)).json()
        assert task["fileSize"] == len(taking)
        store = resources.store
        assert isinstance(store, LocalFileStore)
        assert list(store.root.rglob("*.part")) == []

    @pytest.mark.parametrize("storage", ["local"])  # S3 upload URLs do not reach the service
    async def test_an_upload_whose_bytes_keep_coming_keeps_its_claim(
        self, api: httpx.AsyncClient, resources: Resources, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(receiving, "CLAIM_REFRESH", timedelta(0))  # at every chunk
        ticket, file_id = await new_upload(api, "import")
        url, headers = ticket["uploadUrl"], ticket["uploadHeaders"]
        data, steps = csv_file(1), [asyncio.Event(), asyncio.Event()]

        async def body() -> AsyncIterator[bytes]:  # a third, then another at each step
            third = len(data) // 3
            yield data[:third]
            await steps[0].wait()
            yield data[third : 2 * third]
            await steps[1].wait()
            yield data[2 * third :]

        first = asyncio.create_task(api.put(url, content=body(), headers=headers))
        await wait_until(lambda: claimed_at(resources, file_id))
        long_ago = utcnow() - CLAIM_STALE - timedelta(seconds=1)
        await set_claimed_at(resources, file_id, long_ago)  # as if it had stalled
        steps[0].set()  # ... but its bytes come: the claim is refreshed

        async def refreshed() -> bool:
            return (await claimed_at(resources, file_id) or long_ago) > long_ago

        await wait_until(refreshed)
        assert_problem(await api.put(url, content=csv_file(2), headers=headers), 409)
        steps[1].set()
        assert (await first).status_code == 200
        row = await file_row(resources, file_id)
        assert stored(resources.store, row.key) == data


async def claimed_at(resources: Resources, file_id: str) -> datetime | None:
    moment: datetime | None = (await file_row(resources, file_id)).upload_claimed_at
    return moment


async def set_claimed_at(resources: Resources, file_id: str, moment: datetime) -> None:
    async with session_scope(resources.sessionmaker) as session:
        await session.execute(
            update(files_table)
            .where(files_table.c.id == UUID(file_id))
            .values(upload_claimed_at=moment)
        )


@pytest.mark.parametrize("storage", ["local"])  # S3 upload URLs do not reach the service
class TestClientDisconnect:
    async def test_a_client_gone_mid_put_is_one_warning_and_the_file_stays_pending(
        self,
        api: httpx.AsyncClient,
        server: str,
        resources: Resources,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        ticket, file_id = await new_upload(api, "import")
        data = csv_file(1)
        hanging = await send_part(
            server, "PUT", ticket["uploadUrl"], ticket["uploadHeaders"], data, sent=1000
        )

        async def claimed() -> bool:
            return (await file_row(resources, file_id)).upload_claim is not None

        await wait_until(claimed)  # the service is reading the body
        hanging.close()
        await one_warning(caplog)

        row = await file_row(resources, file_id)
        assert (row.status, row.upload_claim) == ("pending", None)
        store = resources.store
        assert isinstance(store, LocalFileStore)
        assert [p for p in store.root.rglob("*") if p.is_file()] == []
        task = (await api.get(f"{TASKS}/{ticket['id']}", headers=ALICE)).json()
        assert (task["status"], task["fileSize"]) == ("waiting", None)
        again = await api.put(ticket["uploadUrl"], content=data, headers=ticket["uploadHeaders"])
        assert again.status_code == 200, again.text  # the upload can be made again at once

    async def test_a_client_gone_mid_multipart_import_is_one_warning_and_creates_nothing(
        self,
        server: str,
        resources: Resources,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        boundary = "ops-boundary"
        body = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="entityType"\r\n\r\n'
            f'product\r\n--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="p.csv"\r\nContent-Type: text/csv\r\n\r\n'
        ).encode() + csv_file(1)
        headers = ALICE | {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        hanging = await send_part(server, "POST", f"{BULK}/import", headers, body, sent=4000)
        hanging.close()
        await one_warning(caplog)
        assert await count(resources, tasks_table) == 0
        assert await count(resources, files_table) == 0


async def send_part(
    server: str, method: str, target: str, headers: dict[str, str], body: bytes, *, sent: int
) -> asyncio.StreamWriter:
    """Start a request announcing all of `body` but sending only its first `sent` bytes."""
    address = urlsplit(server)
    _, writer = await asyncio.open_connection(address.hostname, address.port)
    head = [f"{method} {target} HTTP/1.1", f"Host: {address.netloc}"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    head.append(f"Content-Length: {len(body)}")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body[:sent])
    await writer.drain()
    return writer


async def one_warning(caplog: pytest.LogCaptureFixture) -> None:
    """Wait for the warning of a client gone mid-body: one line, no traceback, no error."""

    def warnings() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.levelno >= logging.WARNING]

    async def logged() -> list[logging.LogRecord]:
        return warnings()

    [record] = await wait_until(logged)
    await asyncio.sleep(0.2)  # anything logged after it would be a second line
    assert warnings() == [record]
    assert record.levelname == "WARNING"
    assert record.exc_info is None
    assert "client disconnected" in record.getMessage()
    assert "Exception in ASGI application" not in caplog.text
