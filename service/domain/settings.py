"""Stored settings as values: a version of a key, its ETag, and what a new version changed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.domain.events import SettingsEventType

#: How a changed secret appears in the audit trail and the event: never its value.
MASK = "***"
#: The `settings.changed` event's topic (also its CloudEvent type).
CHANGED = SettingsEventType.CHANGED


@dataclass(frozen=True, slots=True)
class SettingVersion:
    """One version of a key; version 0 is the schema's defaults, never stored."""

    key: str
    version: int
    document: dict[str, Any]
    changed_at: datetime | None = None
    changed_by: str | None = None
    #: what this version changed from the one before (secrets masked)
    changes: tuple[dict[str, Any], ...] = ()

    @property
    def etag(self) -> str:
        return etag(self.key, self.version, self.document)


def etag(key: str, version: int, document: dict[str, Any]) -> str:
    """A strong ETag: the version and a digest of the document (defaults may change in code)."""
    canonical = json.dumps([key, document], sort_keys=True, separators=(",", ":"))
    return f'"{version}-{hashlib.sha256(canonical.encode()).hexdigest()[:16]}"'


def matches(if_match: str, current: str) -> bool:
    """Whether an If-Match header names `current` (strong comparison, RFC 9110 §13.1.1)."""
    return current in (tag.strip() for tag in if_match.split(","))


def changes(
    old: dict[str, Any], new: dict[str, Any], secrets: frozenset[str]
) -> list[dict[str, Any]]:
    """Each changed leaf as {path, old, new}; a secret's values are masked (None stays None)."""
    return list(_walk(old, new, (), secrets))


def _walk(old: Any, new: Any, path: tuple[str, ...], secrets: frozenset[str]) -> Iterator[Any]:
    if isinstance(old, dict) and isinstance(new, dict):
        for name in sorted(old.keys() | new.keys()):
            yield from _walk(old.get(name), new.get(name), (*path, name), secrets)
        return
    if old == new:
        return
    if path and path[-1] in secrets:
        old, new = _masked(old), _masked(new)
    yield {"path": ".".join(path), "old": scrub(old, secrets), "new": scrub(new, secrets)}


def _masked(value: Any) -> Any:
    return None if value is None else MASK


def scrub(value: Any, secrets: frozenset[str]) -> Any:
    """`value` with the secrets anywhere inside it masked (a new provider's whole object)."""
    if isinstance(value, dict):
        return {k: _masked(v) if k in secrets else scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, secrets) for v in value]
    return value
