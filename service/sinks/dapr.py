"""Dapr service invocation of the service that owns the entity.

Contract (POST {sidecar}/v1.0/invoke/{targetService}/method/{method}):
request  {"entity", "mode", "skipDuplicates", "dryRun", "batchId",
          "records": [{"row", "key", "data"}]}
         with header Idempotency-Key = batchId ("<task id>:<batch number>"), so a batch re-sent
         after a crash between the call and our checkpoint is recognised by the owner;
response {"results": [{"key", "status": "created" | "updated" | "skipped" | "error", "message"}]}
         (a record missing from results counts as created). 5xx or no answer: SinkUnavailable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from service.bulk.batches import Options, Outcome
from service.bulk.rows import Candidate, RowError
from service.sinks.base import SinkUnavailable


class DaprServiceSink:
    kind = "service"

    def __init__(self, client: httpx.AsyncClient, target_service: str, method: str) -> None:
        self.client = client
        self.path = f"/v1.0/invoke/{target_service}/method/{method.lstrip('/')}"

    async def write(
        self,
        session: AsyncSession,
        entity: str,
        task_id: UUID,
        batch_number: int,
        batch: Sequence[Candidate],
        options: Options,
    ) -> Outcome:
        batch_id = f"{task_id}:{batch_number}"
        body = {
            "entity": entity,
            "mode": options.mode,
            "skipDuplicates": options.skip_duplicates,
            "dryRun": options.dry_run,
            "batchId": batch_id,
            "records": [{"row": c.row_number, "key": c.key, "data": c.data} for c in batch],
        }
        try:
            response = await self.client.post(
                self.path, json=body, headers={"Idempotency-Key": batch_id}
            )
        except httpx.HTTPError as error:
            raise SinkUnavailable(f"target service unreachable: {error}") from error
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise SinkUnavailable(f"target service answered {response.status_code}")
        if response.status_code >= 400:
            message = (
                f"target service refused the batch ({response.status_code}): {response.text[:300]}"
            )
            return Outcome(errors=[RowError(c.row_number, None, c.key, message) for c in batch])
        return _outcome(batch, response.json() if response.content else {})

    async def close(self) -> None:
        await self.client.aclose()


def _outcome(batch: Sequence[Candidate], body: dict[str, Any]) -> Outcome:
    results = {str(r.get("key")): r for r in body.get("results", []) if isinstance(r, dict)}
    outcome = Outcome()
    for candidate in batch:
        result = results.get(candidate.key, {})
        status = result.get("status", "created")
        if status == "updated":
            outcome.updated += 1
        elif status == "skipped":
            outcome.skipped += 1
        elif status == "error":
            message = str(result.get("message") or "rejected by the target service")
            outcome.errors.append(
                RowError(candidate.row_number, result.get("column"), candidate.key, message)
            )
        else:
            outcome.created += 1
    return outcome
