"""A client's side of bulk import and export: render a file, upload it, wait, download.

Uploads and downloads follow the signed URLs the service gives, whichever store is behind them.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from service.bulk.batches import Options, Outcome
from service.bulk.rows import Candidate
from service.bulk.schemas import SCHEMAS
from service.bulk.writers import open_writer
from service.sinks.local import LocalSink
from tests.fixtures.app import user, wait_until
from tests.fixtures.s3 import transfer

TASKS = "/api/v1/operations/tasks"
FILES = "/api/v1/operations/files"
ALICE = user("alice")


def render(entity: str, fmt: str, rows: list[dict[str, Any]], *, compress: bool = False) -> bytes:
    buffer = io.BytesIO()
    writer = open_writer(buffer, fmt, SCHEMAS[entity].columns, gzip=compress)  # type: ignore[arg-type]
    writer.write_rows(rows)
    writer.close()
    return buffer.getvalue()


async def finished(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        task = (await client.get(f"{TASKS}/{task_id}", headers=ALICE)).json()
        return task if task["status"] in ("completed", "failed", "cancelled") else None

    result: dict[str, Any] = await wait_until(done, timeout=30, interval=0.05)
    return result


async def confirm_upload(client: httpx.AsyncClient, task: dict[str, Any]) -> None:
    """Tell the service the input's bytes are in the store (an S3 upload bypasses the API)."""
    done = await client.post(f"{FILES}/{task['inputFileId']}/complete", headers=ALICE)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "ready"


async def start_import(
    client: httpx.AsyncClient, entity: str, name: str, content: bytes, **params: Any
) -> dict[str, Any]:
    """Create an import task, upload its file to the signed URL and confirm it."""
    body = {"taskType": "import", "entityType": entity, "fileName": name, "params": params}
    created = await client.post(TASKS, json=body, headers=ALICE)
    assert created.status_code == 201, created.text
    task: dict[str, Any] = created.json()
    assert task["status"] == "waiting"
    put = await transfer(
        client, "PUT", task["uploadUrl"], content=content, headers=task["uploadHeaders"]
    )
    assert put.status_code == 200, put.text
    await confirm_upload(client, task)
    return task


async def import_file(
    client: httpx.AsyncClient, entity: str, name: str, content: bytes, **params: Any
) -> dict[str, Any]:
    task = await start_import(client, entity, name, content, **params)
    return await finished(client, task["id"])


async def download(client: httpx.AsyncClient, task_id: str, file: str = "output") -> bytes:
    link = await client.get(f"{TASKS}/{task_id}/download", params={"file": file}, headers=ALICE)
    assert link.status_code == 200, link.text
    response = await transfer(client, "GET", link.json()["downloadUrl"])
    assert response.status_code == 200, response.text
    return response.content


async def export(
    client: httpx.AsyncClient, entity: str, **params: Any
) -> tuple[dict[str, Any], bytes]:
    body = {"taskType": "export", "entityType": entity, "params": params}
    created = await client.post(TASKS, json=body, headers=ALICE)
    task = await finished(client, created.json()["id"])
    assert task["status"] == "completed", task
    return task, await download(client, task["id"])


class GatedSink:
    """The local sink, holding batch `held` until `gate` opens; it records the batches asked."""

    kind = "local"

    def __init__(self, held: int) -> None:
        self.held = held
        self.reached = asyncio.Event()
        self.gate = asyncio.Event()
        self.batches: list[int] = []
        self._inner = LocalSink()

    async def write(
        self,
        session: AsyncSession,
        entity: str,
        task_id: UUID,
        batch_number: int,
        batch: Sequence[Candidate],
        options: Options,
    ) -> Outcome:
        self.batches.append(batch_number)
        if batch_number == self.held:
            self.reached.set()
            await self.gate.wait()  # before any statement: the session holds no connection yet
        return await self._inner.write(session, entity, task_id, batch_number, batch, options)

    async def close(self) -> None:
        await self._inner.close()
