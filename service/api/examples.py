"""An example request and answer for every operation of the OpenAPI document.

Kept in one place and added to the document after FastAPI builds it (app.py `_describe`): the
examples of a schema go on its component (`examples`, JSON Schema's keyword), those of an
inline schema or a list on the operation's media type. The main models have explicit examples
(`SCHEMAS`, `INLINE`): realistic values a reader can copy. The task and template examples are
made from a real record through the answer's own model, so they keep up with its fields.

Every other request body and 2xx JSON answer gets one derived from its JSON Schema
(`derive_example`), so a new operation has an example from its first commit rather than when
someone remembers to write one; a derived example is attached only when it validates against its
schema (jsonschema, Draft 2020-12), and where none can be made the operation stays without one,
which tests/unit/api/test_openapi_examples.py reports. That test validates every example.
"""

from __future__ import annotations

import copy
import enum
import math
import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from jsonschema import Draft202012Validator
from referencing.exceptions import Unresolvable  # jsonschema's own resolver

from service import __version__
from service.api.routes.templates import TemplateView
from service.bulk.params import ExportParams
from service.catalog.templates import SHIPPED
from service.domain.callers import Caller
from service.domain.tasks import Priority, TaskStatus, new_task
from service.domain.templates import TemplateRecord, narrowed_schema
from service.usecases.templates import SYSTEM_AUTHOR
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


def _template() -> dict[str, Any]:
    """The shipped nightly export at its second version (an admin let it gzip), as a user sees
    it."""
    template_id, shipped = SHIPPED[0]
    content = replace(shipped, params={**shipped.default_params, "gzip": True})
    record = TemplateRecord(
        id=template_id,
        version=2,
        latest_version=2,
        active=True,
        content=content,
        params_schema=narrowed_schema(ExportParams.model_json_schema(by_alias=True), content),
        created_by=SYSTEM_AUTHOR,
        created_at=AT - timedelta(days=30),
        version_created_at=AT - timedelta(days=1),
        updated_at=AT - timedelta(days=1),
    )
    view = TemplateView.of(record, Caller("alice"))
    dumped: dict[str, Any] = view.model_dump(mode="json", by_alias=True)
    return dumped


TEMPLATE = _template()
UPLOAD_URL = f"/api/v1/operations/files/content/{FILE_ID}?expires=1796549400&signature=0c1d"
DOWNLOAD = {
    "downloadUrl": f"/api/v1/operations/files/content/{FILE_ID}?expires=1796549400&signature=7e2a",
    "expiresAt": _json(AT + timedelta(minutes=15)),
}

#: by component schema name: one example each (their `examples`)
SCHEMAS: dict[str, Any] = {
    "ReplayRequest": {
        "filter": {"eventType": "operations.task.created", "receivedFrom": _json(AT)},
        "limit": 100,
        "dryRun": True,
    },
    "BulkRequest": {
        "action": "retry",
        "filter": {"status": "failed", "taskType": "export", "tag": ["nightly"]},
        "preview": True,
    },
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
    "TaskUpdate": {
        "name": "Price list (EU)",
        "tags": ["weekly", "eu"],
        "priority": "high",
        "scheduledAt": _json(AT + timedelta(hours=20)),
        "params": {"format": "xlsx", "columns": ["sku", "price", "currency"]},
    },
    "TemplateBody": {
        "name": "Weekly order export",
        "description": "Orders matching the caller's filters, as XLSX for accounting.",
        "category": "export",
        "taskType": "export",
        "entityType": "order",
        "params": {"format": "xlsx"},
        "requiredFields": ["filters"],
        "optionalFields": ["columns", "fileName"],
        "requiredRole": None,
        "tags": ["weekly", "orders"],
        "priority": "low",
        "queue": "bulk",
        "maxRetries": 2,
        "notificationSettings": {"onCompletion": True, "onFailure": True, "channels": ["inApp"]},
    },
    "FromTemplate": {
        "templateId": TEMPLATE["id"],
        "params": {"columns": ["sku", "name", "price"]},
        "name": "Product feed for the marketplace",
        "tags": ["feed"],
        "scheduledAt": _json(AT + timedelta(hours=20)),
    },
    "TemplateView": TEMPLATE,
    "TemplatePage": {"items": [TEMPLATE], "total": 1, "page": 1, "pageSize": 20},
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
        "replayedAt": None,
        "replayedBy": None,
    },
    "ReplayAnswer": {"matched": 3, "applied": False, "replayed": 0, "skipped": 0, "limit": 100},
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
    """Put the examples into an OpenAPI document built by FastAPI: the explicit ones, then a
    derived one for each request body and 2xx JSON answer still without."""
    components: dict[str, Any] = document.get("components", {})
    schemas: dict[str, Any] = components.get("schemas", {})
    for name, schema in schemas.items():
        if name in SCHEMAS:
            schema["examples"] = [SCHEMAS[name]]
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict):
                continue
            bodies = [(operation.get("requestBody", {}), True)]
            bodies += [
                (answer, False)
                for code, answer in operation.get("responses", {}).items()
                if str(code).startswith("2")
            ]
            for body, is_request in bodies:
                for media_type, media in body.get("content", {}).items():
                    schema = media.get("schema", {})
                    target = schemas.get(_component(schema) or "")
                    if "example" in media or "examples" in media:
                        continue
                    if isinstance(target, dict) and target.get("examples"):
                        continue
                    example = _media_example(path, method, media_type, schema)
                    if example is not None:
                        media["example"] = example
                    elif is_request or "json" in media_type:
                        _add_derived(media, target, components)


def _add_derived(media: dict[str, Any], target: Any, components: dict[str, Any]) -> None:
    """A derived example on the component the media type refers to (so its other uses share
    it), else on the media type; none when none validates."""
    if isinstance(target, dict):
        target_examples = derive_example(target, components)
        if target_examples:
            target["examples"] = target_examples
        return
    derived = derive_example(media.get("schema", {}), components)
    if derived:
        media["example"] = derived[0]


#: nesting (properties, items, $refs, branches) past this gives up on a branch: a recursive
#: schema is not entered again inside itself, and this bounds whatever else nests deep
MAX_DEPTH = 32

#: a string of each `format` (what a reader would send)
FORMATS: dict[str, str] = {
    "date-time": _json(AT),
    "date": "2026-12-06",
    "time": "09:30:00Z",
    "duration": "PT15M",
    "uuid": TASK_ID,
    "uri": "https://shop.example.com/hooks/operations",
    "url": "https://shop.example.com/hooks/operations",
    "iri": "https://shop.example.com/hooks/operations",
    "uri-reference": "/api/v1/operations/tasks",
    "iri-reference": "/api/v1/operations/tasks",
    "uri-template": "/api/v1/operations/tasks/{taskId}",
    "email": "alice@example.com",
    "idn-email": "alice@example.com",
    "hostname": "shop.example.com",
    "idn-hostname": "shop.example.com",
    "ipv4": "192.0.2.10",
    "ipv6": "2001:db8::10",
    "byte": "c2t1LG5hbWUscHJpY2UK",  # base64 of the CSV line below
    "binary": "sku,name,price\n",
    "password": "correct-horse-battery-staple",
    "json-pointer": "/tasks/0",
    "relative-json-pointer": "0/name",
    "regex": "^[a-z]+$",
}

#: strings tried in turn for a string schema: the first that fits its lengths and pattern
STRINGS: tuple[str, ...] = (
    "example",
    "alice",
    "product",
    "A-1",
    "a",
    "1",
    "abc",
    "ABC",
    "x1",
    "products.csv",
    "text/csv",
    SHA256,
    TASK_ID,
    _json(AT),
    "2026-12-06",
    "https://shop.example.com/hooks/operations",
    "alice@example.com",
    "",
)

#: keywords that describe a schema without constraining it
_ANNOTATIONS = frozenset({"title", "description", "default", "examples", "example", "deprecated"})


class _Missing(enum.Enum):
    """No value could be made for a schema."""

    MISSING = enum.auto()


MISSING = _Missing.MISSING


def derive_example(schema: Mapping[str, Any], components: Mapping[str, Any]) -> list[Any]:
    """An example of `schema` made from its keywords (`$ref`s into `components`, the OpenAPI
    document's, where a component's own example is used), as a list: one that validates
    against it (Draft 2020-12, formats checked), or none.

    Deterministic: the same schema gives the same example. First with every optional property
    that can be made, then, if that does not validate (keywords across properties, such as
    `if`/`then` or `dependentRequired`), with the required ones only."""
    for optional in (True, False):
        value = _Deriver(components, optional=optional).value(schema, 0)
        if value is not MISSING and _valid(schema, value, components):
            return [value]
    return []


def _valid(schema: Any, value: Any, components: Mapping[str, Any]) -> bool:
    if not isinstance(schema, Mapping):
        return schema is not False
    validator = Draft202012Validator(
        {**schema, "components": components}, format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    try:
        return bool(validator.is_valid(value))
    except (Unresolvable, re.error):  # a $ref to nowhere, a pattern Python cannot read: no example
        return False


def _number(value: Any) -> float | None:
    """A numeric keyword's value (OpenAPI 3.0's boolean exclusive bounds are not numbers)."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _inside(value: float, schema: Mapping[str, Any]) -> bool:
    low, high = _number(schema.get("minimum")), _number(schema.get("maximum"))
    above, below = _number(schema.get("exclusiveMinimum")), _number(schema.get("exclusiveMaximum"))
    return (
        (low is None or value >= low)
        and (high is None or value <= high)
        and (above is None or value > above)
        and (below is None or value < below)
    )


class _Deriver:
    """Makes a value of a schema, keyword by keyword (see derive_example)."""

    def __init__(self, components: Mapping[str, Any], *, optional: bool) -> None:
        self.components = components
        self.optional = optional
        #: the $refs being derived, outermost first
        self.refs: list[str] = []

    def value(self, schema: Any, depth: int, variant: int = 0) -> Any:
        """A value of `schema`, or MISSING; `variant` asks for the n-th distinct one (the items
        of an array with uniqueItems)."""
        if schema is True or schema == {}:
            return {}
        if not isinstance(schema, Mapping) or depth > MAX_DEPTH:
            return MISSING
        if "$ref" in schema:
            return self._ref(schema, depth, variant)
        if "const" in schema:
            return copy.deepcopy(schema["const"])
        hint = self._hint(schema, variant)
        if hint is not MISSING:
            return hint
        if "allOf" in schema:
            return self.value(self._merged(schema), depth + 1, variant)
        for keyword in ("anyOf", "oneOf"):
            if isinstance(schema.get(keyword), list):
                return self._branch(schema, keyword, depth, variant)
        return self._typed(schema, depth, variant)

    def _typed(self, schema: Mapping[str, Any], depth: int, variant: int) -> Any:
        kind = self._kind(schema)
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, depth)
        scalars = {
            "string": self._string,
            "integer": self._integer,
            "number": self._float,
            "boolean": self._boolean,
            "null": self._null,
        }
        make = scalars.get(kind or "")
        if make is not None:
            return make(schema, variant)
        return {} if variant == 0 else MISSING  # any value: an object, as free-form data is

    def _hint(self, schema: Mapping[str, Any], variant: int) -> Any:
        """A value the schema names: an example, a member of its enum, a default that says
        something (not null, not empty)."""
        examples = schema.get("examples")
        if isinstance(examples, list) and variant < len(examples):
            return copy.deepcopy(examples[variant])
        if "example" in schema and variant == 0:
            return copy.deepcopy(schema["example"])
        enum_values = schema.get("enum")
        if isinstance(enum_values, list):
            return copy.deepcopy(enum_values[variant]) if variant < len(enum_values) else MISSING
        default = schema.get("default")
        if variant == 0 and default not in (None, "", [], {}):
            return copy.deepcopy(default)
        return MISSING

    def _resolve(self, ref: str) -> Any:
        if not ref.startswith("#/"):
            return None
        node: Any = {"components": self.components}
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            node = node.get(part) if isinstance(node, Mapping) else None
        return node

    def _ref(self, schema: Mapping[str, Any], depth: int, variant: int) -> Any:
        target = self._resolve(schema["$ref"])
        if target is None:
            return MISSING
        rest = {k: v for k, v in schema.items() if k != "$ref" and k not in _ANNOTATIONS}
        if rest:  # keywords beside the $ref apply too
            return self.value({"allOf": [target, rest]}, depth + 1, variant)
        examples = target.get("examples") if isinstance(target, Mapping) else None
        if isinstance(examples, list) and examples and variant == 0:
            return copy.deepcopy(examples[0])
        if schema["$ref"] in self.refs:  # recursive: not again inside itself
            return MISSING
        self.refs.append(schema["$ref"])
        try:
            return self.value(target, depth + 1, variant)
        finally:
            self.refs.pop()

    def _merged(self, schema: Mapping[str, Any]) -> dict[str, Any]:
        """allOf as one schema: the parts' properties and required together, other keywords
        the later part's."""
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        parts = [
            self._resolve(part["$ref"]) if isinstance(part, Mapping) and "$ref" in part else part
            for part in schema["allOf"]
        ]
        for part in [*parts, dict(merged)]:
            if not isinstance(part, Mapping):
                continue
            properties = {**merged.get("properties", {}), **part.get("properties", {})}
            required = [*merged.get("required", [])]
            required += [r for r in part.get("required", []) if r not in required]
            merged.update(part)
            merged["properties"], merged["required"] = properties, required
        if not merged["properties"]:
            del merged["properties"]
        if not merged["required"]:
            del merged["required"]
        return merged

    def _branch(self, schema: Mapping[str, Any], keyword: str, depth: int, variant: int) -> Any:
        """The first branch (non-null ones first) whose value the whole schema accepts."""
        rest = {
            k: v for k, v in schema.items() if k not in ("anyOf", "oneOf") and k not in _ANNOTATIONS
        }
        branches = [b for b in schema[keyword] if isinstance(b, Mapping)]
        nulls = [b for b in branches if b.get("type") == "null" or b.get("const", 0) is None]
        for branch in [*(b for b in branches if b not in nulls), *nulls]:
            value = self.value({**rest, **branch}, depth + 1, variant)
            if value is not MISSING and _valid(schema, value, self.components):
                return value
        return MISSING

    @staticmethod
    def _kind(schema: Mapping[str, Any]) -> str | None:
        kinds = schema.get("type")
        if isinstance(kinds, list):
            given = [k for k in kinds if k != "null"]
            return str(given[0]) if given else ("null" if kinds else None)
        if isinstance(kinds, str):
            return kinds
        if {"properties", "additionalProperties", "required"} & schema.keys():
            return "object"
        if {"items", "prefixItems", "minItems", "maxItems"} & schema.keys():
            return "array"
        if {"minLength", "maxLength", "pattern", "format"} & schema.keys():
            return "string"
        if {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"} & schema.keys():
            return "number"
        return None

    def _object(self, schema: Mapping[str, Any], depth: int) -> Any:
        properties: Mapping[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", []))
        extra = schema.get("additionalProperties", {})
        result: dict[str, Any] = {}
        for name, sub in properties.items():
            if name not in required and not self.optional:
                continue
            value = self.value(sub, depth + 1)
            if name in required:
                if value is MISSING:
                    return MISSING
                result[name] = value
            elif value is not MISSING and _valid(sub, value, self.components):
                result[name] = value
        others = [name for name in schema.get("required", []) if name not in result]
        wanted = int(schema.get("minProperties", 0))
        while len(others) < wanted - len(result):
            others.append(f"key{len(others) + 1}")
        for name in others:
            value = self.value(extra if isinstance(extra, Mapping) else {}, depth + 1)
            if value is MISSING:
                return MISSING
            result[name] = value
        return result

    def _array(self, schema: Mapping[str, Any], depth: int) -> Any:
        least = int(schema.get("minItems", 0))
        most = schema.get("maxItems")
        count = max(1, least) if most is None else min(max(1, least), int(most))
        prefix = schema.get("prefixItems", [])
        items = schema.get("items", {})
        result: list[Any] = []
        while len(result) < count:
            index = len(result)
            if index < len(prefix):
                sub = prefix[index]
            elif items is False:
                break
            else:
                sub = items
            value = self.value(sub, depth + 1, variant=index)
            if value is MISSING:
                if index < least:
                    return MISSING
                break
            result.append(value)
        return result

    @staticmethod
    def _boolean(schema: Mapping[str, Any], variant: int) -> Any:
        return [False, True][variant] if variant < 2 else MISSING

    @staticmethod
    def _null(schema: Mapping[str, Any], variant: int) -> Any:
        return None if variant == 0 else MISSING

    def _string(self, schema: Mapping[str, Any], variant: int) -> Any:
        least = int(schema.get("minLength", 0))
        most = schema.get("maxLength")
        pattern = schema.get("pattern")
        known = FORMATS.get(str(schema.get("format")))
        candidates = [known] if known is not None else []
        candidates += [c for c in STRINGS if c != known]
        fits: list[str] = []
        for candidate in candidates:
            if len(candidate) < least:
                candidate += (candidate[-1:] or "x") * (least - len(candidate))
            if most is not None:
                candidate = candidate[: int(most)]
            if len(candidate) < least or candidate in fits:
                continue
            try:
                if isinstance(pattern, str) and not re.search(pattern, candidate):
                    continue
            except re.error:
                return MISSING
            fits.append(candidate)
            if len(fits) > variant:
                return candidate
        return MISSING

    def _integer(self, schema: Mapping[str, Any], variant: int) -> Any:
        low, high = _number(schema.get("minimum")), _number(schema.get("maximum"))
        above, below = (
            _number(schema.get("exclusiveMinimum")),
            _number(schema.get("exclusiveMaximum")),
        )
        lows = [math.ceil(low)] if low is not None else []
        lows += [math.floor(above) + 1] if above is not None else []
        highs = [math.floor(high)] if high is not None else []
        highs += [math.ceil(below) - 1] if below is not None else []
        value = max([1, *lows]) if not highs else min(max([1, *lows]), *highs)
        value += variant
        step = _number(schema.get("multipleOf"))
        if step is not None and step.is_integer() and step > 0:
            value = math.ceil(value / step) * int(step)
        if value < max(lows, default=value) or value > min(highs, default=value):
            return MISSING
        return value

    def _float(self, schema: Mapping[str, Any], variant: int) -> Any:
        low = _number(schema.get("minimum"))
        above = _number(schema.get("exclusiveMinimum"))
        high = _number(schema.get("maximum"))
        below = _number(schema.get("exclusiveMaximum"))
        floor = max((b for b in (low, above) if b is not None), default=None)
        ceiling = min((b for b in (high, below) if b is not None), default=None)
        candidates = [1.0 + variant]
        if floor is not None:
            candidates += [floor + variant, floor + 1.0 + variant]
        if ceiling is not None:
            candidates += [ceiling - variant, ceiling - 1.0 - variant]
        if floor is not None and ceiling is not None:
            candidates.append(floor + (ceiling - floor) * (variant + 1) / (variant + 2))
        step = _number(schema.get("multipleOf"))
        for value in candidates:
            if step:
                value = math.ceil(value / step) * step
            if _inside(value, schema):
                return value
        return MISSING
