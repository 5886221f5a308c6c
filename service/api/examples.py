"""An example request and answer for every operation of the OpenAPI document.

Kept in one place and added to the document after FastAPI builds it (app.py `_describe`): the
examples of a schema go on its component (`examples`, JSON Schema's keyword), those of an
inline schema or a list on the operation's media type. The task examples are made from a
real record through the answer's own model, so they keep up with its fields;
tests/unit/api/test_openapi_examples.py validates each against its schema.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from service import __version__
from service.domain.tasks import Priority, TaskStatus, new_task
from service.usecases.views import TaskPublic

TASK_ID = "3f8a1c52-9d1e-4c3b-8f0e-2a6d4b7c9e10"
FILE_ID = "b2c4d6e8-1a3b-4c5d-8e9f-0a1b2c3d4e5f"
AT = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)
SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def _json(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _task() -> dict[str, Any]:
    record = new_task(
        task_id=UUID(TASK_ID),
        task_type="import",
        entity_type="product",
        status=TaskStatus.PENDING,
        priority=Priority.NORMAL,
        queue="bulk",
        requested_by="alice",
        params={"mode": "upsert", "skipDuplicates": False},
        max_retries=3,
        now=AT,
        file_name="products.csv",
        file_size=48_213,
        input_file_id=FILE_ID,
        name="Spring catalogue",
        tags=["catalogue"],
    )
    done = replace(
        record,
        status=TaskStatus.COMPLETED,
        progress=100,
        total_items=1200,
        processed_items=1200,
        succeeded_items=1198,
        failed_items=2,
        started_at=AT + timedelta(seconds=1),
        completed_at=AT + timedelta(seconds=9),
        attempts=1,
        result={"created": 1100, "updated": 98, "skipped": 0, "rowsPerSecond": 150.0},
        version=4,
        updated_at=AT + timedelta(seconds=9),
    )
    dumped: dict[str, Any] = TaskPublic.of(done).model_dump(mode="json", by_alias=True)
    return dumped


TASK = _task()
PENDING = {
    **TASK,
    "status": "pending",
    "progress": 0,
    "totalItems": None,
    "processedItems": 0,
    "succeededItems": 0,
    "failedItems": 0,
    "startedAt": None,
    "completedAt": None,
    "attempts": 0,
    "result": None,
    "version": 1,
    "updatedAt": TASK["createdAt"],
}
FILE = {
    "id": FILE_ID,
    "fileName": "products.csv",
    "contentType": "text/csv",
    "size": 48_213,
    "sha256": SHA256,
    "status": "ready",
    "owner": "alice",
    "taskId": None,
    "purpose": "input",
    "createdAt": _json(AT),
    "expiresAt": _json(AT + timedelta(days=30)),
}
UPLOAD_URL = f"/api/v1/operations/files/content/{FILE_ID}?expires=1796549400&signature=0c1d"
DOWNLOAD = {
    "downloadUrl": f"/api/v1/operations/files/content/{FILE_ID}?expires=1796549400&signature=7e2a",
    "expiresAt": _json(AT + timedelta(minutes=15)),
}

#: by component schema name: one example each (their `examples`)
SCHEMAS: dict[str, Any] = {
    "TaskCreate": {
        "taskType": "export",
        "entityType": "product",
        "params": {"format": "csv", "columns": ["sku", "price"]},
        "priority": "normal",
        "name": "Price list",
        "tags": ["weekly"],
    },
    "TaskSpec": {"taskType": "export", "entityType": "customer", "params": {"format": "jsonl"}},
    "TaskBatch": {
        "tasks": [
            {"taskType": "export", "entityType": "product", "params": {"format": "csv"}},
            {"taskType": "export", "entityType": "order", "params": {"format": "xlsx"}},
        ]
    },
    "ProgressReport": {
        "progress": 40,
        "totalItems": 1000,
        "processedItems": 400,
        "succeededItems": 398,
        "failedItems": 2,
        "message": "400 of 1,000 rows",
    },
    "BulkExport": {
        "entityType": "product",
        "params": {"format": "xlsx", "columns": ["sku", "name", "price"]},
        "priority": "normal",
    },
    "FileCreate": {
        "fileName": "products.csv",
        "contentType": "text/csv",
        "size": 48_213,
        "sha256": SHA256,
    },
    "Health": {"status": "ok", "service": "common-operations", "version": __version__},
    "TaskPublic": TASK,
    "TaskCreated": {
        **PENDING,
        "inputFileId": None,
        "uploadUrl": UPLOAD_URL,
        "uploadHeaders": {"Content-Type": "text/csv"},
        "uploadExpiresAt": _json(AT + timedelta(minutes=15)),
    },
    "TaskPage": {"items": [TASK], "total": 1, "page": 1, "pageSize": 20, "nextCursor": None},
    "BatchItemAnswer": {"index": 0, "status": 201, "id": TASK_ID, "taskStatus": "pending"},
    "BatchAnswer": {
        "created": 1,
        "refused": 1,
        "items": [
            {"index": 0, "status": 201, "id": TASK_ID, "taskStatus": "pending"},
            {
                "index": 1,
                "status": 422,
                "problem": {
                    "type": "https://common-operations.dev/problems/validation-error",
                    "title": "Unprocessable Content",
                    "status": 422,
                    "detail": "tasks.1.params.format: must be one of csv, jsonl, xlsx",
                },
            },
        ],
    },
    "DownloadLink": DOWNLOAD,
    "TaskTypeView": {
        "taskType": "export",
        "summary": "Export records of an entity type to CSV, JSON Lines or XLSX",
        "entityTypes": ["product", "customer", "order", "inventory"],
        "entityTypeRequired": True,
        "queue": "bulk",
        "priority": "normal",
        "maxRetries": 3,
        "executionTimeoutSeconds": 3600.0,
        "heartbeatTimeoutSeconds": 30.0,
        "requiredRole": None,
        "allowed": True,
        "needsFile": False,
        "nonRetryableErrors": ["InvalidExport"],
        "paramsSchema": {"type": "object", "properties": {"format": {"enum": ["csv"]}}},
    },
    "EventView": {
        "id": 17,
        "taskId": TASK_ID,
        "eventType": "operations.task.completed",
        "fromStatus": "processing",
        "toStatus": "completed",
        "actor": "worker-7f9c-1",
        "message": None,
        "createdAt": _json(AT + timedelta(seconds=9)),
    },
    "LogView": {
        "id": 5,
        "taskId": TASK_ID,
        "level": "warning",
        "message": "row 14: price is not a number",
        "attempt": 1,
        "data": {"row": 14, "column": "price"},
        "createdAt": _json(AT + timedelta(seconds=3)),
    },
    "AttemptView": {
        "attempt": 1,
        "workerId": "worker-7f9c-1",
        "dispatch": "push",
        "outcome": "completed",
        "error": None,
        "startedAt": _json(AT + timedelta(seconds=1)),
        "finishedAt": _json(AT + timedelta(seconds=9)),
        "durationMs": 8000,
    },
    "ProgressAck": {"status": "processing", "progress": 40, "cancelRequested": False},
    "DeadLetterView": {
        "id": 1,
        "eventId": "4711",
        "eventType": "operations.task.created",
        "topic": "operations.deadletter",
        "taskId": TASK_ID,
        "payload": {"id": TASK_ID, "taskType": "export"},
        "receivedAt": _json(AT),
    },
    "FileView": FILE,
    "Upload": {
        "file": {**FILE, "status": "pending", "size": None, "sha256": None, "expiresAt": None},
        "uploadUrl": UPLOAD_URL,
        "uploadMethod": "PUT",
        "uploadHeaders": {"Content-Type": "text/csv"},
        "expiresAt": _json(AT + timedelta(minutes=15)),
    },
}
SCHEMAS["LogPage"] = {"items": [SCHEMAS["LogView"]], "total": 1, "page": 1, "pageSize": 50}
SCHEMAS["FilePage"] = {"items": [FILE], "total": 1, "page": 1, "pageSize": 20}

#: request bodies whose schema is inline, by (path suffix, method, media type)
INLINE: dict[tuple[str, str, str], Any] = {
    ("/bulk/import", "post", "application/json"): {
        "entityType": "product",
        "fileName": "products.csv",
        "fileContentType": "text/csv",
        "params": {"mode": "upsert", "skipDuplicates": False},
    },
    ("/bulk/import", "post", "multipart/form-data"): {
        "entityType": "product",
        "params": '{"mode": "upsert"}',
        "file": "sku,name,price\nA-1,Shoe,12.50\n",
    },
}


def _component(schema: dict[str, Any]) -> str | None:
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[1] if isinstance(ref, str) else None


def _media_example(path: str, method: str, media_type: str, schema: dict[str, Any]) -> Any:
    """The example of a media type whose schema is not a component with its own."""
    for (suffix, verb, kind), example in INLINE.items():
        if path.endswith(suffix) and method == verb and media_type == kind:
            return example
    items = schema.get("items") if schema.get("type") == "array" else None
    name = _component(items) if isinstance(items, dict) else None
    return [SCHEMAS[name]] if name in SCHEMAS else None


def add_examples(document: dict[str, Any]) -> None:
    """Put the examples into an OpenAPI document built by FastAPI."""
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        if name in SCHEMAS:
            schema["examples"] = [SCHEMAS[name]]
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict):
                continue
            bodies = [operation.get("requestBody", {})]
            bodies += [
                answer
                for code, answer in operation.get("responses", {}).items()
                if str(code).startswith("2")
            ]
            for body in bodies:
                for media_type, media in body.get("content", {}).items():
                    schema = media.get("schema", {})
                    if _component(schema) in SCHEMAS or "example" in media:
                        continue
                    example = _media_example(path, method, media_type, schema)
                    if example is not None:
                        media["example"] = example
