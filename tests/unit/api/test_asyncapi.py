"""The AsyncAPI document against the code: every topic the service can publish has a channel, a
send operation and a description, and nothing else is documented as sent; what the worker
subscribes to is documented as received; payloads are the models' own JSON Schemas, and a real
outgoing CloudEvent is valid against its message. The structure is checked with
pydantic-asyncapi's AsyncAPI 3 models and by resolving every reference."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic_asyncapi.v3 import AsyncAPI
from referencing import Registry
from referencing.jsonschema import DRAFT7

from service.api import asyncapi
from service.bootstrap import build_catalog
from service.domain.events import DEAD_LETTER_TOPIC, EventType
from service.domain.jobs import JOBS
from service.domain.tasks import Priority, TaskStatus, new_task
from service.events.base import OutgoingEvent
from service.events.cloudevents import to_structured_body
from service.usecases.views import TaskPublic, snapshot
from tests.fixtures.app import make_settings
from worker.handlers import register_all
from worker.registry import HandlerRegistry
from worker.subscriptions import subscriptions

DOC = asyncapi.document()


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                yield v
            else:
                yield from refs(v)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def resolve(pointer: str) -> Any:
    assert pointer.startswith("#/"), pointer
    node: Any = DOC
    for part in pointer[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def sent() -> dict[str, dict[str, Any]]:
    """Channel title → channel, of every send operation."""
    return {
        resolve(op["channel"]["$ref"])["title"]: resolve(op["channel"]["$ref"])
        for op in DOC["operations"].values()
        if op["action"] == "send"
    }


def received() -> set[str]:
    return {
        resolve(op["channel"]["$ref"])["address"]
        for op in DOC["operations"].values()
        if op["action"] == "receive"
    }


def test_the_structure_is_asyncapi_3() -> None:
    assert DOC["asyncapi"] == "3.0.0"
    assert DOC["info"]["title"]
    assert DOC["info"]["version"]
    AsyncAPI.model_validate(DOC)  # required fields and types of every object
    json.dumps(DOC)  # plain JSON
    for pointer in refs(DOC):
        resolve(pointer)  # every reference resolves inside the document
    for name, operation in DOC["operations"].items():
        assert operation["action"] in {"send", "receive"}, name
        channel = resolve(operation["channel"]["$ref"])
        for message in operation["messages"]:
            # AsyncAPI 3: an operation's messages are messages of its channel
            assert message["$ref"].startswith(operation["channel"]["$ref"] + "/messages/")
            assert resolve(message["$ref"]) in channel["messages"].values()
    for key in [*DOC["channels"], *DOC["components"]["messages"], *DOC["components"]["schemas"]]:
        assert all(c.isalnum() or c in "._-" for c in key), key


def test_every_published_topic_is_documented_and_nothing_else() -> None:
    published = set(asyncapi.published_topics())
    assert {e.value for e in EventType} <= published
    assert set(sent()) == published


@pytest.mark.parametrize("topic", [*asyncapi.published_topics(), DEAD_LETTER_TOPIC])
def test_every_topic_has_a_description(topic: str) -> None:
    """A new topic needs a line in service/api/asyncapi.py DESCRIPTIONS."""
    assert asyncapi.DESCRIPTIONS.get(topic, "").strip(), f"describe {topic} in DESCRIPTIONS"
    channel = DOC["channels"][asyncapi.key(topic)]
    assert channel["description"] == asyncapi.DESCRIPTIONS[topic]


def test_topics_of_other_enums_have_their_payload_model() -> None:
    """A topic enum beside EventType carries its own payload: register it in PAYLOADS."""
    for kind in asyncapi.topic_enums():
        if kind is not EventType:
            for member in kind:
                assert str(member) in asyncapi.PAYLOADS, f"register the payload of {member}"


def test_what_the_worker_subscribes_to_is_documented_as_received() -> None:
    settings = make_settings("sqlite+aiosqlite:///unused.db", Path("/tmp"))
    registry = register_all(HandlerRegistry(build_catalog(settings)))
    topics = {s["topic"] for s in subscriptions(settings, registry)}
    jobs = {f"/jobs/{job.name}" for job in JOBS}
    assert received() == topics | jobs
    assert set(asyncapi.consumed_topics()) == topics


def test_payloads_are_the_models_json_schemas() -> None:
    schemas = DOC["components"]["schemas"]
    expected = TaskPublic.model_json_schema(
        by_alias=True, mode="serialization", ref_template="#/components/schemas/{model}"
    )
    for name, schema in expected.pop("$defs", {}).items():
        assert schemas[name] == schema
    assert schemas["TaskPublic"] == expected
    for topic in asyncapi.published_topics():
        payload = DOC["components"]["messages"][asyncapi.key(topic)]["payload"]
        data = payload["allOf"][1]["properties"]["data"]
        assert data == {"$ref": "#/components/schemas/" + asyncapi.payload_model(topic).__name__}


def _validator(topic: str) -> jsonschema.protocols.Validator:
    """The message's payload schema, its references resolved inside the document."""
    registry: Registry[Any] = Registry().with_resource("urn:asyncapi", DRAFT7.create_resource(DOC))
    payload = DOC["components"]["messages"][asyncapi.key(topic)]["payload"]
    schema = json.loads(json.dumps(payload).replace('"#/', '"urn:asyncapi#/'))
    return jsonschema.Draft7Validator(schema, registry=registry)


@pytest.mark.parametrize("event", list(EventType))
def test_a_real_event_is_valid_against_its_message(event: EventType) -> None:
    now = datetime(2026, 12, 6, 12, tzinfo=UTC)
    task = new_task(
        task_id=uuid.uuid4(),
        task_type="import",
        entity_type="product",
        status=TaskStatus.PENDING,
        priority=Priority.HIGH,
        queue="bulk",
        requested_by="alice",
        params={"format": "csv"},
        max_retries=3,
        now=now,
        file_name="products.csv",
    )
    trace = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
    outgoing = OutgoingEvent("42", event.value, str(task.id), snapshot(task), now, trace)
    body = json.loads(to_structured_body(outgoing))
    validator = _validator(event.value)
    validator.validate(body)
    wrong = {**body, "type": "operations.task.other"}
    assert not validator.is_valid(wrong)
    assert not validator.is_valid({**body, "data": {**body["data"], "progress": "half"}})


def test_addresses_carry_the_topic_prefix() -> None:
    prefixed = asyncapi.document("run42.", "pubsub")
    created = prefixed["channels"][asyncapi.key(EventType.CREATED.value)]
    assert created["address"] == "run42." + EventType.CREATED.value
    assert created["title"] == EventType.CREATED.value
