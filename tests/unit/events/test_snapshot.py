"""A task's snapshot (the `data` of its CloudEvents) is TaskPublic's JSON form, field for field,
whatever the record holds: the snapshot is serialised from the fields directly, for speed."""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from hypothesis import given, settings, strategies as st

from service.domain.tasks import Priority, TaskRecord, TaskStatus
from service.usecases.views import TaskPublic, snapshot

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
moments = st.datetimes(timezones=st.just(UTC), min_value=datetime(1970, 1, 2))

BY_TYPE: dict[Any, st.SearchStrategy[Any]] = {
    UUID: st.uuids(),
    str: st.text(max_size=20),
    int: st.integers(min_value=-(2**63), max_value=2**63 - 1),
    bool: st.booleans(),
    datetime: moments,
    TaskStatus: st.sampled_from(TaskStatus),
    Priority: st.sampled_from(Priority),
    dict[str, Any]: st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    list[str]: st.lists(st.text(max_size=8), max_size=3),
}


def strategy_of(annotation: Any) -> st.SearchStrategy[Any]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(annotation) if a is not type(None)]
        return st.none() | strategy_of(inner)
    return BY_TYPE[annotation]


HINTS = typing.get_type_hints(TaskRecord)
records = st.builds(
    TaskRecord,
    **{f.name: strategy_of(HINTS[f.name]) for f in dataclasses.fields(TaskRecord)},
)


@settings(max_examples=200, deadline=None)
@given(records)
def test_the_snapshot_is_the_public_shape_of_the_record(task: TaskRecord) -> None:
    expected = TaskPublic.of(task).model_dump(mode="json", by_alias=True)
    got = snapshot(task)
    assert got == expected
    assert list(got) == list(expected)  # the same keys, in the same order


@settings(max_examples=20, deadline=None)
@given(records)
def test_the_snapshot_is_camel_case_json(task: TaskRecord) -> None:
    moment = datetime(2026, 12, 7, 12, 30, tzinfo=UTC)
    task = dataclasses.replace(
        task, status=TaskStatus.COMPLETED, priority=Priority.HIGH, created_at=moment
    )
    data = snapshot(task)
    assert data["id"] == str(task.id)
    assert data["status"] == "completed"
    assert data["priority"] == "high"
    assert data["createdAt"] == "2026-12-07T12:30:00Z"
    assert "taskType" in data
    assert "task_type" not in data
    assert "traceparent" not in data  # not public
    assert "deletedAt" not in data
