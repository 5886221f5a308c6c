"""Schemathesis over the OpenAPI the app publishes, against a real server (issue 9 §7).

Each run serves `create_app(settings)` with uvicorn on a loopback port, loads /openapi.json from
it and sends what schemathesis generates from that document (its examples, coverage and fuzzing
phases, valid and invalid data) as a plain user and as an admin, on SQLite and PostgreSQL
(invalid data on PostgreSQL only: see MODES). No answer may be a server error or break the
document; bad input must be refused, good input taken.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

import httpx
import pytest
import requests
import schemathesis
from hypothesis import strategies as st
from schemathesis import CheckContext, Response
from schemathesis.config import SchemathesisConfig
from schemathesis.schemas import BaseSchema
from schemathesis.specs.openapi import checks as openapi_checks

from service.app import create_app
from service.bootstrap import Resources
from service.config import Settings
from tests.fixtures.app import TOKEN
from tests.fixtures.serving import ThreadedServer
from tests.integration.api.support import finish, start

if TYPE_CHECKING:  # schemathesis' own alias of an OpenAPI case (no runtime name)
    from requests.structures import CaseInsensitiveDict
    from schemathesis.specs.openapi.schemas import OpenApiCase

#: Examples per operation and phase in the committed suite (10: ~90 operations, four callers,
#: a few minutes); OPS_FUZZ_EXAMPLES raises it for a longer local run (e.g. 1000) that shakes
#: out what this budget misses.
EXAMPLES = int(os.environ.get("OPS_FUZZ_EXAMPLES", "10"))
#: Fixed, with derandomized generation: CI sends the same requests every run.
SEED = 20260609
API = "/api/v1/operations"

IDENTITIES = {
    "user": {"X-User-ID": "fuzz-user"},
    "admin": {"X-User-ID": "fuzz-admin", "X-User-Roles": "admin"},
}
#: Every this many cases goes without the run's identity: what schemathesis generates for the
#: security headers, or nothing (the answer must then be a 401, or a 4xx for bad input).
WITHOUT_IDENTITY_EVERY = 8
#: The headers the API decides its caller by.
IDENTITY_HEADERS = ("X-User-ID", "X-User-Roles", "X-Service-Token", "Authorization")
#: What refuses invalid input: schemathesis' default list (no 5xx, which is never right here),
#: and 413.
REFUSALS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


#: Invalid data (schemathesis' negative mode) is generated on PostgreSQL only, for each role.
#: Input that breaks the document is refused at the edge, before any use case runs, so its
#: answer (a 4xx problem, and no 5xx) is the same on both databases: a refusal that went
#: missing (invalid input reaching a use case) fails negative_data_rejection there whichever
#: database would then have stored it. Valid data reaches the database and its rules (lengths,
#: integer bounds, text it can hold), so SQLite gets every phase with valid data. Negative
#: cases are about half of the cases and the slower half (the coverage phase's variants of
#: each field): the two SQLite runs take half the time they did with both modes.
MODES = {"postgresql": "all", "sqlite": "positive"}


def _config(examples: int, mode: str) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "generation": {
                "max-examples": examples,
                "deterministic": True,
                "database": "none",
                "mode": mode,
            },
            "phases": {"stateful": {"enabled": False}},
            "checks": {
                "enabled": True,
                # Replaced by identity_is_required and accepts_valid_data below.
                "ignored_auth": {"enabled": False},
                "positive_data_acceptance": {"enabled": False},
                # Refusals: the default statuses, and 413 for a size over a limit of the
                # deployment (each operation that takes one documents it).
                "negative_data_rejection": {"expected-statuses": REFUSALS},
            },
        }
    )


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """schemathesis 4.32 reads and relabels `node._nodeid`, which pytest 9.2's nodes no longer
    have (they keep a NodeId); give it the attribute it reports with."""
    request.node._nodeid = request.node.nodeid


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Streams end after a second here: a fuzzed request to one must come back."""
    return {"stream_max_seconds": 1.0}


@pytest.fixture
def served(settings: Settings) -> Iterator[str]:
    with ThreadedServer(create_app(settings), lifespan=True) as server:
        yield server.url


@pytest.fixture(params=sorted(IDENTITIES))
def identity(request: pytest.FixtureRequest) -> dict[str, str]:
    return IDENTITIES[str(request.param)]


async def _task(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> str:
    response = await client.post(f"{API}/tasks", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture
async def known_ids(
    served: str, identity: dict[str, str], resources: Resources
) -> dict[str, list[str]]:
    """Ids of real tasks (in every state) and files the fuzzer may pick for path parameters,
    so that the routes behind a 404 are reached too: the run's own, and another user's."""
    other = {"X-User-ID": "someone-else"}
    async with httpx.AsyncClient(base_url=served) as client:
        # claimed one by one: a claim takes every pending task of the queue
        failed = await _task(client, identity, taskType="fail", maxRetries=0)
        await finish(resources, await start(resources, failed), "failed", "on purpose")
        completed = await _task(client, identity, taskType="sleep", maxRetries=0)
        await finish(resources, await start(resources, completed), "completed")
        processing = await _task(client, identity, taskType="noop", maxRetries=0)
        await start(resources, processing)
        pending = await _task(client, identity, taskType="sleep")
        scheduled = await _task(
            client, identity, taskType="noop", scheduledAt="2999-01-01T00:00:00Z"
        )
        waiting = await _task(
            client, identity, taskType="import", entityType="product", fileName="p.csv"
        )
        others = await _task(client, other, taskType="noop")
        file = await client.post(f"{API}/files", json={"fileName": "f.csv"}, headers=identity)
        assert file.status_code == 201, file.text
        schedules = []
        for owner in (identity, other):
            schedule = {"name": "s", "cron": "0 3 * * *", "taskType": "noop"}
            made = await client.post(f"{API}/schedules", json=schedule, headers=owner)
            assert made.status_code == 201, made.text
            schedules.append(str(made.json()["id"]))
    tasks = [pending, scheduled, waiting, processing, failed, completed, others]
    templates = ["nightly-product-export", "customer-import-upsert", "cleanup-old-tasks"]
    return {
        "task_id": tasks,
        "file_id": [file.json()["file"]["id"]],
        "template_id": templates,
        "schedule_id": schedules,
    }


def _flatmap_known_ids(known: dict[str, list[str]]) -> Any:
    def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> Any:
        for name, ids in known.items():
            if not path_parameters:
                break
            value = path_parameters.get(name)
            # a valid id may become a real one (template ids are names, not UUIDs)
            if isinstance(value, str) and (_UUID.match(value) or name == "template_id"):

                def chosen_id(chosen: str, name: str = name) -> dict[str, Any]:
                    return {**path_parameters, name: chosen}

                return st.sampled_from([value, *ids]).map(chosen_id)
        return st.just(path_parameters)

    return flatmap_path_parameters


def _identity_provider(identity: dict[str, str]) -> type:
    class Identity:
        """The run's identity on most cases (the service token on the internal route)."""

        def __init__(self) -> None:
            self.cases = 0

        def get(self, case: OpenApiCase, ctx: Any) -> dict[str, str] | None:
            self.cases += 1
            if self.cases % WITHOUT_IDENTITY_EVERY == 0:
                return None
            if case.operation.path.endswith("/progress") and self.cases % 4:
                return {"X-Service-Token": TOKEN}
            return identity

        def set(self, case: OpenApiCase, data: dict[str, str], ctx: Any) -> None:
            # schemathesis' AuthProvider documents setting a plain dict; Case types it narrower
            case.headers = cast("CaseInsensitiveDict[Any]", {**(case.headers or {}), **data})

    return Identity


@pytest.fixture
def fuzz_schema(
    served: str, identity: dict[str, str], known_ids: dict[str, list[str]], dialect: str
) -> Any:
    config = _config(EXAMPLES, MODES[dialect])
    schema: BaseSchema = schemathesis.openapi.from_url(f"{served}/openapi.json", config=config)
    # The SSE streams never end (keep-alives every few seconds): a request there would wait
    # forever. tests/integration/streams drives them with real streaming clients instead.
    schema = schema.exclude(method="GET", path_regex=r"/stream$")
    schema.config.update(base_url=served)
    schema.auth(refresh_interval=None)(_identity_provider(identity))
    schema.hook(_flatmap_known_ids(known_ids))
    return schema


class IdentityIsRequired:
    """A check: an operation that answered a caller with a 2xx answers 401 without an identity,
    and with a wrong service token (probed once per operation). It stands in for schemathesis'
    ignored_auth, which also probes with a made-up X-User-ID: the gateway vouches for that
    header, so any user id is a caller and there is no invalid one to probe with."""

    def __init__(self) -> None:
        self.probed: set[str] = set()
        self.__name__ = "identity_is_required"

    def __call__(self, ctx: CheckContext, response: Response, case: OpenApiCase) -> bool | None:
        label = case.operation.label
        if response.request.method != case.operation.method.upper():
            return None  # the coverage phase's other methods (OPTIONS answers without identity)
        if not 200 <= response.status_code < 300 or label in self.probed:
            return None
        if not case.operation.definition.raw.get("security"):
            return None
        self.probed.add(label)
        for headers in ({}, {"X-Service-Token": "not-the-token"}, {"Authorization": "Bearer no"}):
            probe = response.request.copy()
            for name in IDENTITY_HEADERS:
                probe.headers.pop(name, None)
            probe.headers.update(headers)
            with requests.Session() as session:
                status = session.send(probe, timeout=30).status_code
            assert status == 401, f"{label} answered {status} without an identity ({headers})"
        return None


#: Fields whose 422 no schema can state: the catalog's rules of a task type (GET /task-types:
#: its entity types and params), notification settings' rule across fields (the webhook channel
#: needs a webhookUrl), an Idempotency-Key used before with another body, a cursor that the API
#: did not return (opaque), and the identity headers (UTF-8, no control characters), for which a
#: security scheme has no schema. Templates: the fields they name must be their task type's
#: params. A schedule's too: what its cron and zone mean (croniter's and the IANA database's
#: rules), whether it fires at all (endAt against startAt and now), and its template.
#: A batch names its items' fields from the batch (`tasks.3.params.x`); a params key may hold
#: any character, line breaks included. Dead letters: receivedTo before receivedFrom; a task
#: list's (and its stream's) startDate after its endDate.
_UNSTATABLE = re.compile(
    r"^(tasks\.\d+\.)?"
    r"(taskType|entityType|params(\..*)?|notificationSettings(\..*)?|Idempotency-Key|cursor"
    r"|x-user-(id|roles)|requiredFields(\..*)?|optionalFields(\..*)?"
    r"|cron|timeZone|endAt|templateId|templateVersion|(filter\.)?(receivedTo|startDate))$",
    re.DOTALL,
)
#: The names and media types a task's file may have are its type's: an import reads the
#: formats it knows (422 for another file name, 415 for another media type).
_TYPE_FILES = {
    ("POST", f"{API}/tasks", 415, "fileContentType"),
    ("POST", f"{API}/tasks", 422, "fileName"),
    ("POST", f"{API}/bulk/import", 422, "fileName"),
    ("POST", f"{API}/tasks/from-template", 415, "fileContentType"),
    ("POST", f"{API}/tasks/from-template", 422, "fileName"),
}


def _fields(response: Response) -> list[str]:
    return [str(e.get("field", "")) for e in response.json().get("errors", [])]


#: What no text a database stores may hold, in any field (service/api/fields.check_storable):
#: a JSON Schema string allows both, and a pattern on every string would only restate it.
_UNSTORABLE = ("must not contain NUL characters", "must not contain lone surrogates")


def _unstorable_only(response: Response) -> bool:
    reasons = [str(e.get("reason", "")) for e in response.json().get("errors", [])]
    return bool(reasons) and all(r.startswith(_UNSTORABLE) for r in reasons)


#: Stored settings: rules between fields of a settings page (a default currency among the
#: accepted ones, a maximum not below its minimum, per-currency limits of accepted currencies
#: only), which each error names; and the version a PUT replaces (If-Match: 412 when it is not
#: the current one, 428 without it), which is the database's state, not the document's.
_SETTINGS = re.compile(r"^/api/v1/settings/[a-z_-]+$")
_SETTINGS_RULES = re.compile(
    r"^(defaultCurrency|cashOnDelivery(\.perCurrency\.[A-Z]{3})?\.maxOrderAmount|cashOnDelivery)$"
)


def _settings_precondition(response: Response, case: OpenApiCase, fields: list[str]) -> bool:
    if not _SETTINGS.match(case.operation.path) or case.operation.method.upper() != "PUT":
        return False
    if response.status_code in (412, 428):
        return True
    named = bool(fields) and all(_SETTINGS_RULES.match(f) for f in fields)
    return response.status_code == 422 and named


def accepts_valid_data(ctx: CheckContext, response: Response, case: OpenApiCase) -> bool | None:
    """positive_data_acceptance, but for the refusals no schema can state (see above), and
    412: an If-Match of the right form that names another version than the task's."""
    if response.status_code == 412:
        return None
    fields = _fields(response) if response.status_code in (415, 422) else []
    if response.status_code == 422 and fields and all(_UNSTATABLE.match(f) for f in fields):
        return None
    if response.status_code == 422 and _unstorable_only(response):
        return None
    if _settings_precondition(response, case, fields):
        return None
    operation = (case.operation.method.upper(), case.operation.path, response.status_code)
    if len(fields) == 1 and (*operation, *fields) in _TYPE_FILES:
        return None
    return openapi_checks.positive_data_acceptance(ctx, response, case)


schema = schemathesis.pytest.from_fixture("fuzz_schema")


@pytest.fixture
def fuzz_checks() -> list[Any]:
    """The checks added to those of the config, with state for one run."""
    return [IdentityIsRequired(), accepts_valid_data]


@schema.parametrize()
def test_fuzz(case: OpenApiCase, fuzz_checks: list[Any]) -> None:
    case.call_and_validate(additional_checks=fuzz_checks)
