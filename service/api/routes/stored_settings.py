"""/settings/{key} (admins) and /public/settings/{key} (anyone): stored, versioned settings.

Each key the registry knows gets its own routes, typed by its schema (so the OpenAPI shows the
payment page's fields); any other key answers 404.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Response
from pydantic import BaseModel, Field, create_model

from service.api import fields
from service.api.deps import CallerDep, ResourcesDep, UnitDep
from service.api.json_body import BoundedRoute
from service.catalog.settings.base import SettingDefinition
from service.catalog.settings.registry import REGISTRY, lookup
from service.clock import utcnow
from service.domain.settings import SettingVersion
from service.usecases import settings as settings_usecases
from service.web.problems import CALLER_RESPONSES, responses
from service.wire import CamelModel

IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        max_length=1024,
        description="The ETag of the version this replaces (GET answers it); 428 without it",
    ),
]
Traceparent = Annotated[str | None, Header(max_length=64)]
Limit = Annotated[int, Query(ge=1, le=100)]


class Change(CamelModel):
    """One changed field: its dotted path, old and new value (a secret's as "***")."""

    path: str
    old: Any = None
    new: Any = None


def _title(key: str) -> str:
    return "".join(part.capitalize() for part in key.replace("-", "_").split("_"))


def _models(definition: SettingDefinition) -> tuple[type[BaseModel], ...]:
    """The answers of one key's routes: its admin view, public view and a page of versions."""
    name = _title(definition.key)
    admin: type[BaseModel] = create_model(
        f"{name}SettingsAdmin",
        __base__=CamelModel,
        key=(str, ...),
        version=(int, Field(description="0: the defaults, never saved")),
        etag=(str, Field(description="send it back as If-Match to replace this version")),
        changed_at=(datetime | None, None),
        changed_by=(str | None, None),
        settings=(definition.admin_model, ...),
    )
    public: type[BaseModel] = create_model(
        f"{name}SettingsPublic",
        __base__=CamelModel,
        key=(str, ...),
        version=(int, ...),
        settings=(definition.public_model, ...),
    )
    entry: type[BaseModel] = create_model(
        f"{name}SettingsVersion",
        __base__=CamelModel,
        version=(int, ...),
        changed_at=(datetime | None, None),
        changed_by=(str | None, None),
        changes=(list[Change], Field(description="what this version changed")),
        settings=(definition.admin_model, ...),
    )
    page: type[BaseModel] = create_model(
        f"{name}SettingsVersions",
        __base__=CamelModel,
        items=(list[entry], ...),
        total=(int, ...),
        limit=(int, ...),
        offset=(int, ...),
    )
    return admin, public, page


def _admin_body(definition: SettingDefinition, version: SettingVersion) -> dict[str, Any]:
    return {
        "key": version.key,
        "version": version.version,
        "etag": version.etag,
        "changedAt": version.changed_at,
        "changedBy": version.changed_by,
        "settings": definition.admin_view(version.document),
    }


def _key_routes(router: APIRouter, definition: SettingDefinition) -> None:
    key = definition.key
    admin, public, page = _models(definition)

    async def read(caller: CallerDep, resources: ResourcesDep, response: Response) -> Any:
        version = await settings_usecases.read(
            resources.unit, resources.settings_cache, caller, key
        )
        response.headers["ETag"] = version.etag
        return _admin_body(definition, version)

    async def replace(
        body: Any,
        uow: UnitDep,
        caller: CallerDep,
        response: Response,
        if_match: IfMatch = None,
        traceparent: Traceparent = None,
    ) -> Any:
        version = await settings_usecases.save(
            uow, caller, key, body, if_match=if_match, now=utcnow(), traceparent=traceparent
        )
        response.headers["ETag"] = version.etag
        return _admin_body(definition, version)

    async def versions(
        uow: UnitDep,
        caller: CallerDep,
        limit: Limit = 20,
        offset: Annotated[fields.Offset, Query()] = 0,
    ) -> Any:
        found = await settings_usecases.versions(uow, caller, key, limit=limit, offset=offset)
        items = [
            {
                "version": v.version,
                "changedAt": v.changed_at,
                "changedBy": v.changed_by,
                "changes": list(v.changes),
                "settings": definition.admin_view(v.document),
            }
            for v in found.items
        ]
        return {"items": items, "total": found.total, "limit": limit, "offset": offset}

    async def read_public(resources: ResourcesDep, response: Response) -> Any:
        version = await settings_usecases.current(resources.unit, resources.settings_cache, key)
        response.headers["ETag"] = version.etag
        return {
            "key": key,
            "version": version.version,
            "settings": definition.public_view(version.document),
        }

    # the body's type is the key's schema: set on the function, where FastAPI reads it
    replace.__annotations__["body"] = definition.input_model
    tag: list[str | Enum] = [f"settings: {key}"]
    router.add_api_route(
        f"/settings/{key}",
        read,
        methods=["GET"],
        response_model=admin,
        responses=CALLER_RESPONSES | responses(403),
        summary=f"Read the {key} settings (admins)",
        description=f"{definition.description}. Before any save: the defaults, as version 0. "
        "Secrets show only as `…Configured` flags.",
        tags=tag,
    )
    router.add_api_route(
        f"/settings/{key}",
        replace,
        methods=["PUT"],
        response_model=admin,
        responses=CALLER_RESPONSES | responses(403, 412, 413, 428),
        summary=f"Save a new version of the {key} settings (admins)",
        description="The whole document; If-Match must name the current version's ETag (412 "
        "when stale, 428 when missing). Secret fields left out keep their stored value; null "
        "removes one.",
        tags=tag,
    )
    router.add_api_route(
        f"/settings/{key}/versions",
        versions,
        methods=["GET"],
        response_model=page,
        responses=CALLER_RESPONSES | responses(403),
        summary=f"The saved versions of the {key} settings, newest first (admins)",
        tags=tag,
    )
    router.add_api_route(
        f"/public/settings/{key}",
        read_public,
        methods=["GET"],
        response_model=public,
        responses=responses(503),
        summary=f"The public part of the {key} settings (no identity needed)",
        tags=tag,
    )


async def _unknown(key: Annotated[str, Path(max_length=200)]) -> None:
    """A key no schema registers."""
    lookup(key)


def router() -> APIRouter:
    """Every registered key's routes, then 404 for any other key."""
    built = APIRouter(route_class=BoundedRoute)
    for definition in REGISTRY.values():
        _key_routes(built, definition)
    for path in ("/settings/{key}", "/settings/{key}/versions", "/public/settings/{key}"):
        built.add_api_route(path, _unknown, methods=["GET"], include_in_schema=False)
    built.add_api_route("/settings/{key}", _unknown, methods=["PUT"], include_in_schema=False)
    return built
