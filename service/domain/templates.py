"""Task templates: a stored, versioned recipe for a task, and the rules of using one."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.domain.tasks import Priority

TemplateId = str


@dataclass(frozen=True, slots=True)
class TemplateContent:
    """What one version of a template says; a new version is a new content."""

    name: str
    task_type: str
    description: str | None = None
    category: str | None = None
    entity_type: str | None = None
    #: default params of the tasks it makes (a caller's params are merged over them)
    params: Mapping[str, Any] | None = None
    #: params a caller must give (by their wire names)
    required_fields: tuple[str, ...] = ()
    #: params a caller may give besides the required ones
    optional_fields: tuple[str, ...] = ()
    #: role needed to use it (None: any user)
    role: str | None = None
    tags: tuple[str, ...] = ()
    priority: Priority | None = None
    queue: str | None = None
    max_retries: int | None = None
    #: as stored (NotificationSettings.stored())
    notification_settings: Mapping[str, Any] | None = None

    @property
    def default_params(self) -> dict[str, Any]:
        return dict(self.params or {})

    @property
    def settable(self) -> frozenset[str] | None:
        """The params a caller may set; None: any param of the task type."""
        if not self.required_fields and not self.optional_fields:
            return None
        return frozenset(self.required_fields) | frozenset(self.optional_fields)


@dataclass(frozen=True, slots=True)
class TemplateRecord:
    """One version of a template as stored, with its template's state."""

    id: TemplateId
    version: int
    #: the newest version (the one used when none is named)
    latest_version: int
    active: bool
    content: TemplateContent
    #: the params JSON Schema of this version (the task type's, narrowed)
    params_schema: dict[str, Any]
    created_by: str
    created_at: datetime
    #: when this version was made
    version_created_at: datetime
    updated_at: datetime


def merged_params(defaults: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """The caller's params over the template's defaults (top-level keys: a given key wins)."""
    return {**defaults, **given}


def missing_fields(required: Iterable[str], params: Mapping[str, Any]) -> list[str]:
    """Required params absent (or null) after the merge, in the template's order."""
    return [name for name in required if params.get(name) is None]


def unsettable_fields(content: TemplateContent, given: Mapping[str, Any]) -> list[str]:
    """Params a caller gave that the template does not let callers set."""
    settable = content.settable
    if settable is None:
        return []
    return [name for name in given if name not in settable]


def narrowed_schema(type_schema: Mapping[str, Any], content: TemplateContent) -> dict[str, Any]:
    """The task type's params schema as this template offers it: required fields marked
    required, the template's defaults as defaults, and (when it names fields) only those."""
    schema = dict(type_schema)
    properties: dict[str, Any] = dict(schema.get("properties", {}))
    defaults = content.default_params
    for name, value in defaults.items():
        if name in properties:
            properties[name] = {**properties[name], "default": value}
    settable = content.settable
    if settable is not None:
        properties = {k: v for k, v in properties.items() if k in settable}
        schema["additionalProperties"] = False
    schema["properties"] = properties
    required = [r for r in schema.get("required", []) if r in properties and r not in defaults]
    required += [r for r in content.required_fields if r not in required]
    schema["required"] = required
    return schema
