"""The catalog's checks, as properties over any input a client could send."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from service.bootstrap import build_catalog
from service.catalog.catalog import Catalog, Limits, Override
from service.catalog.model import Submission
from service.config import Settings
from service.domain.callers import SERVICE_ROLE, Caller
from service.domain.errors import Forbidden, InvalidInput
from service.domain.jobs import JOB_NAMES
from worker.jobs import JOBS

CATALOG = build_catalog(Settings(environment="test"))
ALICE = Caller("alice")
ADMIN = Caller("root", frozenset({"admin"}))

#: Any JSON value a client can send.
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def refused(
    task_type: str, params: dict[str, Any], *, entity: str | None = None, caller: Caller = ALICE
) -> str | None:
    """The field a create is refused for (422), or None when the catalog takes it."""
    try:
        CATALOG.check(caller, Submission(task_type, entity, params))
    except InvalidInput as error:
        return error.field
    return None


@settings(max_examples=300, deadline=None)
@given(seconds=JSON)
def test_sleep_takes_exactly_the_numbers_of_its_range(seconds: Any) -> None:
    valid = (
        isinstance(seconds, int | float)
        and not isinstance(seconds, bool)
        and math.isfinite(seconds)
        and 0 <= seconds <= 24 * 3600
    )
    assert refused("sleep", {"seconds": seconds}) == (None if valid else "params.seconds")


@settings(max_examples=200, deadline=None)
@given(key=st.text(min_size=1).filter(lambda k: k not in {"seconds"}), value=JSON)
def test_an_unknown_params_key_is_refused_naming_it(key: str, value: Any) -> None:
    assert refused("sleep", {key: value}) == f"params.{key}"


@settings(max_examples=200, deadline=None)
@given(until=JSON, permanent=JSON)
def test_fail_takes_whole_attempts_and_true_or_false(until: Any, permanent: Any) -> None:
    whole = (type(until) is int and 1 <= until <= 100) or until is None
    flag = isinstance(permanent, bool)
    field = refused("fail", {"untilAttempt": until, "permanent": permanent})
    if not whole:
        assert field == "params.untilAttempt"
    elif not flag:
        assert field == "params.permanent"
    else:
        assert field is None


@settings(max_examples=200, deadline=None)
@given(name=st.text(max_size=40))
def test_only_listed_types_exist(name: str) -> None:
    known = name in {
        "noop",
        "sleep",
        "fail",
        "import",
        "export",
        "maintenance",
        "notification-batch",
    }
    field = refused(name, {}, entity="product" if name in {"import", "export"} else None)
    if not known:
        assert field == "taskType"
    else:
        assert field != "taskType"


@settings(max_examples=100, deadline=None)
@given(entity=st.none() | st.text(max_size=30))
def test_maintenance_takes_a_job_name_from_an_admin_only(entity: str | None) -> None:
    submission = Submission("maintenance", entity, {})
    with pytest.raises(Forbidden):
        CATALOG.check(ALICE, submission)
    field = refused("maintenance", {}, entity=entity, caller=ADMIN)
    assert field == (None if entity in JOB_NAMES else "entityType")
    service = Caller("svc", frozenset({SERVICE_ROLE}))
    assert refused("maintenance", {}, entity="outbox-sweep", caller=service) is None


def test_both_spellings_of_one_param_are_refused() -> None:
    with pytest.raises(InvalidInput, match="twice"):
        CATALOG.check(ALICE, Submission("fail", None, {"untilAttempt": 2, "until_attempt": 3}))


def test_overrides_apply_to_known_types_only() -> None:
    limits = Limits(execution_timeout=60, heartbeat_timeout=30, max_retries=3)
    catalog = Catalog(CATALOG, limits, {"sleep": Override(execution_timeout=5, max_retries=0)})
    assert (catalog.execution_timeout("sleep"), catalog.max_retries("sleep")) == (5, 0)
    assert (catalog.execution_timeout("noop"), catalog.heartbeat_timeout("noop")) == (60, 30)
    with pytest.raises(ValueError, match="teleport"):
        Catalog(CATALOG, limits, {"teleport": Override(max_retries=1)})


def test_the_worker_runs_every_maintenance_job_there_is() -> None:
    assert set(JOBS) == set(JOB_NAMES)
    assert set(Settings(environment="test").cron) == set(JOB_NAMES)
