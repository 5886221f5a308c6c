"""The JSON document a group's rows travel in (service.db.json_rows): the values as the
database reads them back, whatever orjson can or cannot write."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import uuid4

import orjson

from service.db.json_rows import JsonInsert, literal
from service.db.tables import outbox_table as O

INSERT = JsonInsert(
    O, "rows", skip=("id", "last_error", "published_at"), constants={"attempts": "0"}
)


def test_the_statement_reads_the_columns_that_are_not_constants_in_the_documents_order() -> None:
    assert "attempts" not in INSERT.read
    assert INSERT.read == (
        "topic",
        "task_id",
        "subject",
        "payload",
        "traceparent",
        "created_at",
        "claimed_until",
    )
    assert "WITH ORDINALITY" in INSERT.sql
    assert INSERT.sql.endswith("ORDER BY v.n")
    assert "CAST(v.payload AS jsonb)" in INSERT.sql  # JSON goes as its text, cast on the way in


def test_json_values_go_as_their_own_text_and_missing_keys_as_null() -> None:
    task, at = uuid4(), datetime(2026, 12, 7, 20, 0, 0, 123456, tzinfo=UTC)
    payload = {"big": 2**70, "nested": ["é", None]}
    [row] = json.loads(
        INSERT.document([{"topic": "t", "task_id": task, "payload": payload, "created_at": at}])
    )
    assert row["task_id"] == str(task)
    assert datetime.fromisoformat(row["created_at"]) == at
    assert json.loads(row["payload"]) == payload  # beyond 64 bits, exact
    document = INSERT.document([{"topic": "t", "task_id": task, "created_at": at}])
    assert document == orjson.dumps(json.loads(document)).decode()  # orjson wrote it, in C
    assert row["subject"] is None
    assert row["claimed_until"] is None


def test_text_orjson_refuses_is_written_by_json_all_the_same() -> None:
    """A lone surrogate: the document stays JSON of the same values (the database is the one
    to refuse it, as it refused it in an array)."""
    task, at = uuid4(), datetime(2026, 12, 7, tzinfo=UTC)
    document = INSERT.document([{"topic": "\ud800", "task_id": task, "created_at": at}])
    [row] = json.loads(document)
    assert row["topic"] == "\ud800"
    assert row["task_id"] == str(task)
    assert datetime.fromisoformat(row["created_at"]) == at


def test_constants_are_literals_of_none_booleans_and_integers_only() -> None:
    assert [literal(None), literal(True), literal(False), literal(0), literal(12)] == [
        "NULL",
        "true",
        "false",
        "0",
        "12",
    ]
