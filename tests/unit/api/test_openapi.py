"""The API description: every input bounded, every real status and the identity schemes
documented, and OPTIONS / 405 naming every method of a path (issue 9 §2, §6)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from fastapi import FastAPI

from service.app import create_app
from tests.fixtures.app import make_settings

API = "/api/v1/operations"
ERROR_MEDIA = "application/problem+json"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    data: Path = tmp_path_factory.mktemp("openapi")
    return create_app(make_settings(f"sqlite+aiosqlite:///{data / 'ops.db'}", data))


@pytest.fixture(scope="module")
def spec(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


def _unbounded(spec: dict[str, Any], schema: dict[str, Any], where: str) -> Iterator[str]:
    """Where an integer has no maximum or a string no maxLength, following $refs."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        yield from _unbounded(spec, spec["components"]["schemas"][name], f"{where}→{name}")
        return
    kind = schema.get("type")
    if kind == "integer" and "maximum" not in schema and "exclusiveMaximum" not in schema:
        yield where
    bounded_text = {"maxLength", "enum", "const"} & schema.keys()
    exempt = schema.get("format") in ("uuid", "binary")  # parsed whole / a file (its own limit)
    if kind == "string" and not bounded_text and not exempt:
        yield where
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for i, part in enumerate(schema.get(key, [])):
            yield from _unbounded(spec, part, f"{where}.{key}[{i}]")
    for name, part in schema.get("properties", {}).items():
        yield from _unbounded(spec, part, f"{where}.{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            yield from _unbounded(spec, schema[key], f"{where}.{key}")


class TestInputsAreBounded:
    def test_every_integer_has_a_maximum_and_every_string_a_max_length(
        self, spec: dict[str, Any]
    ) -> None:
        found: list[str] = []
        for method, path, operation in _operations(spec):
            for parameter in operation.get("parameters", []):
                where = f"{method.upper()} {path} {parameter['in']}:{parameter['name']}"
                found += _unbounded(spec, parameter["schema"], where)
            for media, content in operation.get("requestBody", {}).get("content", {}).items():
                where = f"{method.upper()} {path} body({media})"
                found += _unbounded(spec, content["schema"], where)
        assert found == []

    def test_the_walk_finds_an_unbounded_input(self, spec: dict[str, Any]) -> None:
        loose = {"properties": {"n": {"type": "integer"}, "s": {"type": "string"}}}
        assert list(_unbounded(spec, loose, "x")) == ["x.n", "x.s"]


class TestStatuses:
    """Each operation documents the statuses it really answers (401 without a caller, 503 when
    the database is unavailable, and so on), each error as a problem."""

    CALLER: ClassVar[set[str]] = {"401", "422", "503"}
    EXPECTED: ClassVar[dict[tuple[str, str], set[str]]] = {
        ("post", "/tasks"): CALLER | {"200", "201", "409", "413", "415"},
        ("get", "/tasks"): CALLER | {"200"},
        ("get", "/tasks/{task_id}"): CALLER | {"200", "404"},
        ("delete", "/tasks/{task_id}"): CALLER | {"204", "404", "409"},
        ("post", "/tasks/{task_id}/cancel"): CALLER | {"200", "404", "409"},
        ("post", "/tasks/{task_id}/retry"): CALLER | {"200", "404", "409"},
        ("post", "/tasks/{task_id}/submit"): CALLER | {"200", "404", "409", "413"},
        ("get", "/tasks/{task_id}/download"): CALLER | {"200", "404"},
        ("get", "/tasks/{task_id}/logs"): CALLER | {"200", "404"},
        ("get", "/tasks/{task_id}/events"): CALLER | {"200", "404"},
        ("get", "/tasks/{task_id}/attempts"): CALLER | {"200", "404"},
        ("patch", "/tasks/{task_id}/progress"): CALLER | {"200", "403", "404", "409", "413"},
        ("get", "/dead-letters"): CALLER | {"200", "403"},
        ("post", "/dead-letters/{dead_letter_id}/replay"): CALLER | {"200", "403", "404", "409"},
        ("post", "/dead-letters:replay"): CALLER | {"200", "403"},
        ("post", "/bulk/import"): CALLER | {"200", "201", "400", "409", "413", "415"},
        ("post", "/bulk/export"): CALLER | {"200", "201", "409", "413"},
        ("get", "/bulk/operations/{task_id}"): CALLER | {"200", "404"},
        ("post", "/files"): CALLER | {"201", "413", "415"},
        ("patch", "/tasks/{task_id}"): CALLER | {"200", "404", "409", "412"},
        ("post", "/tasks/{task_id}/run"): CALLER | {"200", "404", "409"},
        ("post", "/tasks/from-template"): CALLER | {"200", "201", "403", "404", "409"},
        ("post", "/templates"): CALLER | {"201", "403"},
        ("get", "/templates"): CALLER | {"200"},
        ("get", "/templates/{template_id}"): CALLER | {"200", "404"},
        ("get", "/templates/{template_id}/versions"): CALLER | {"200", "404"},
        ("put", "/templates/{template_id}"): CALLER | {"200", "403", "404", "409"},
        ("post", "/templates/{template_id}/deactivate"): CALLER | {"200", "403", "404"},
    }

    def test_each_operation_documents_its_statuses(
        self, spec: dict[str, Any], subtests: pytest.Subtests
    ) -> None:
        for (method, path), statuses in self.EXPECTED.items():
            with subtests.test(method=method, path=path):
                documented = set(spec["paths"][API + path][method]["responses"])
                assert statuses <= documented

    def test_the_health_probes(self, spec: dict[str, Any]) -> None:
        paths = spec["paths"]
        assert set(paths["/health/ready"]["get"]["responses"]) == {"200", "503"}
        assert set(paths["/health/detailed"]["get"]["responses"]) >= {"200", "401", "403", "503"}
        assert set(paths["/health"]["get"]["responses"]) == {"200"}

    def test_errors_are_problems(self, spec: dict[str, Any], subtests: pytest.Subtests) -> None:
        for method, path, operation in _operations(spec):
            for status, answer in operation["responses"].items():
                if status.startswith("4") or (status == "503" and "health" not in path):
                    with subtests.test(method=method, path=path, status=status):
                        schema = answer["content"][ERROR_MEDIA]["schema"]
                        assert schema == {"$ref": "#/components/schemas/Problem"}
        problem = spec["components"]["schemas"]["Problem"]
        assert {"type", "title", "status", "detail"} <= set(problem["required"])
        assert "errors" in problem["properties"]


class TestSecuritySchemes:
    def test_the_identity_headers_and_the_service_token(self, spec: dict[str, Any]) -> None:
        schemes = spec["components"]["securitySchemes"]
        for name in ("X-User-ID", "X-Service-Token"):
            assert schemes[name] == {
                "type": "apiKey",
                "in": "header",
                "name": name,
                "description": schemes[name]["description"],
            }
        assert schemes["Bearer"]["type"] == "http"
        assert schemes["Bearer"]["scheme"] == "bearer"
        assert "X-User-Roles" not in schemes  # it qualifies X-User-ID, it lets no one in

    def test_the_roles_are_a_header_of_each_operation(self, spec: dict[str, Any]) -> None:
        parameters = spec["paths"][f"{API}/tasks"]["get"]["parameters"]
        assert {"name": "X-User-Roles", "in": "header"}.items() <= next(
            p for p in parameters if p["name"] == "X-User-Roles"
        ).items()

    def test_operations_with_a_caller_name_them_and_the_open_probes_none(
        self, spec: dict[str, Any]
    ) -> None:
        tasks = spec["paths"][f"{API}/tasks"]["get"]["security"]
        assert {name for requirement in tasks for name in requirement} == {
            "X-User-ID",
            "X-Service-Token",
            "Bearer",
        }
        for probe in ("/health", "/health/live", "/health/ready"):
            assert "security" not in spec["paths"][probe]["get"]
        assert spec["paths"]["/health/detailed"]["get"]["security"]


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app without its lifespan: enough for answers given before any dependency runs."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


class TestMethods:
    @pytest.mark.parametrize(
        ("path", "allow"),
        [
            ("/tasks", "GET, POST, OPTIONS"),
            ("/tasks/00000000-0000-0000-0000-000000000000", "GET, PATCH, DELETE, OPTIONS"),
            ("/tasks/00000000-0000-0000-0000-000000000000/progress", "PATCH, OPTIONS"),
            ("/files", "GET, POST, OPTIONS"),
        ],
    )
    async def test_options_names_every_method_of_the_path(
        self, client: httpx.AsyncClient, path: str, allow: str
    ) -> None:
        response = await client.options(API + path)
        assert response.status_code == 204
        assert response.headers["allow"] == allow

    async def test_a_method_the_path_does_not_take_is_405_naming_every_method(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.put(f"{API}/tasks")
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, POST, OPTIONS"
        assert response.headers["content-type"] == ERROR_MEDIA

    async def test_an_unknown_path_is_404_for_options_and_any_other_method(
        self, client: httpx.AsyncClient
    ) -> None:
        for method in ("OPTIONS", "GET", "PUT"):
            response = await client.request(method, f"{API}/nothing-here")
            assert response.status_code == 404
            assert response.headers["content-type"] == ERROR_MEDIA
