"""Dapr service invocation of the service that owns the entity: import batches and export pages.

Import contract (POST {sidecar}/v1.0/invoke/{targetService}/method/{method}):
request  {"entity", "mode", "skipDuplicates", "dryRun", "batchId",
          "records": [{"row", "key", "data"}]}
         with header Idempotency-Key = batchId ("<task id>:<batch number>"), so a batch re-sent
         after a crash between the call and our checkpoint is recognised by the owner;
response {"results": [{"key", "status": "created" | "updated" | "skipped" | "error", "message"}]}
         (a record missing from results counts as created). 5xx or no answer: SinkUnavailable.

Export contract (POST {sidecar}/v1.0/invoke/{targetService}/method/{method}):
request  {"entity", "filters", "after", "limit"}, filter values as the records' JSON holds them
         (a decimal as its text with the column's places, e.g. "12.50");
response {"records": [...], "next": <cursor or null>}. 5xx or no answer: RetryLater; another
         4xx: PermanentFailure.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from service.bulk.batches import Options, Outcome
from service.bulk.rows import Candidate, RowError
from service.domain.errors import PermanentFailure, RetryLater
from service.sinks.base import Page, Selection, SinkUnavailable

if TYPE_CHECKING:  # httpx (~45 ms to import) loads with the first client: most runs use none
    import httpx


def invoke_path(target_service: str, method: str) -> str:
    """The sidecar's path that invokes `method` of `target_service`."""
    return f"/v1.0/invoke/{target_service}/method/{method.lstrip('/')}"


class DaprServiceSink:
    kind = "service"

    def __init__(self, client: httpx.AsyncClient, target_service: str, method: str) -> None:
        self.client = client
        self.path = invoke_path(target_service, method)

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
        import httpx  # loaded by the client already

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


class DaprServiceSource:
    """Records of the owning service, page by page (the export contract above)."""

    kind = "service"

    def __init__(self, client: httpx.AsyncClient, target_service: str, method: str) -> None:
        self.client = client
        self.path = invoke_path(target_service, method)

    async def count(self, selection: Selection) -> None:
        """The owning service does not say how many records it has."""

    async def pages(self, selection: Selection) -> AsyncIterator[Page]:
        after: Any = None
        while True:
            answer = await self._page(selection, after)
            records = answer.get("records") or []
            if records:
                yield records
            after = answer.get("next")
            if after is None or not records:
                return

    async def _page(self, selection: Selection, after: Any) -> dict[str, Any]:
        body = {
            "entity": selection.entity,
            "filters": dict(selection.equals),
            "after": after,
            "limit": selection.batch_size,
        }
        import httpx  # loaded by the client already

        try:
            response = await self.client.post(self.path, json=body)
        except httpx.HTTPError as error:
            raise RetryLater(f"source service unreachable: {error}") from error
        if response.status_code >= 500:
            raise RetryLater(f"source service answered {response.status_code}")
        if response.status_code >= 400:
            raise PermanentFailure(f"source service refused: {response.text[:300]}")
        answer: dict[str, Any] = response.json()
        return answer

    async def close(self) -> None:
        await self.client.aclose()
