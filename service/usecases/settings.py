"""Stored settings: read (cached), save a new version (If-Match, audit, event), list history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from service.catalog.settings.base import SettingDefinition
from service.catalog.settings.registry import lookup
from service.db.repositories.outbox import NewOutboxRow
from service.db.repositories.settings import SettingsRepository, VersionTaken
from service.db.unit_of_work import UnitOfWork, Units
from service.domain import settings as domain
from service.domain.callers import ADMIN_ROLE, Caller
from service.domain.errors import Forbidden, PreconditionFailed, PreconditionRequired
from service.domain.settings import SettingVersion
from service.usecases import history
from service.usecases.settings_cache import SettingsCache


@dataclass(frozen=True, slots=True)
class History:
    """A page of a key's saved versions, newest first."""

    items: list[SettingVersion]
    total: int


def _admin(caller: Caller) -> None:
    if not caller.has_role(ADMIN_ROLE):
        raise Forbidden("settings are for admins: send X-User-Roles: admin")


def _defaults(definition: SettingDefinition) -> SettingVersion:
    return SettingVersion(definition.key, 0, definition.defaults())


async def _current(uow: UnitOfWork, definition: SettingDefinition) -> SettingVersion:
    found = await SettingsRepository(uow.session).current(definition.key)
    return found if found is not None else _defaults(definition)


async def current(units: Units, cache: SettingsCache, key: str) -> SettingVersion:
    """The current version of `key` (its defaults as version 0 before any save), from the
    cache when it holds the key; NotFound for a key no schema registers."""
    definition = lookup(key)
    cached = cache.get(key)
    if cached is not None:
        return cached
    generation = cache.generation(key)
    async with units() as uow:
        found = await _current(uow, definition)
    cache.put(found, generation=generation)
    return found


async def read(units: Units, cache: SettingsCache, caller: Caller, key: str) -> SettingVersion:
    """The current version for an admin (the route shows its admin view)."""
    _admin(caller)
    return await current(units, cache, key)


async def save(
    uow: UnitOfWork,
    caller: Caller,
    key: str,
    body: BaseModel,
    *,
    if_match: str | None,
    now: datetime,
    traceparent: str | None = None,
) -> SettingVersion:
    """Save `body` as the next version of `key` if `if_match` names the current one.

    One transaction: the version row (its audit: who, when, the changed paths with secrets
    masked) and a `settings.changed` outbox row ordered by the key. A body that changes nothing
    saves nothing and answers the current version.
    """
    _admin(caller)
    definition = lookup(key)
    if not if_match:
        raise PreconditionRequired()
    before = await _current(uow, definition)
    if not domain.matches(if_match, before.etag):
        raise PreconditionFailed(
            f"the current version of {key!r} is {before.version} (ETag {before.etag}): read it "
            "again and send its ETag",
            current_version=before.version,
        )
    document = definition.parse(body.model_dump(by_alias=True, exclude_unset=True), before.document)
    if document == before.document:
        return before
    after = SettingVersion(
        key=key,
        version=before.version + 1,
        document=document,
        changed_at=now,
        changed_by=caller.user_id,
        changes=tuple(domain.changes(before.document, document, definition.secrets)),
    )
    try:
        await SettingsRepository(uow.session).add(after)
    except VersionTaken:
        raise PreconditionFailed(
            f"another change of {key!r} was saved first: read it again and send its ETag"
        ) from None
    await history.publish(uow, [_changed(after, now, traceparent)])
    return after


def _changed(version: SettingVersion, now: datetime, traceparent: str | None) -> NewOutboxRow:
    payload: dict[str, Any] = {
        "key": version.key,
        "version": version.version,
        "etag": version.etag,
        "changedAt": now.isoformat(),
        "changedBy": version.changed_by,
        "changes": list(version.changes),
    }
    return NewOutboxRow(domain.CHANGED, None, payload, now, traceparent, subject=version.key)


async def versions(
    uow: UnitOfWork, caller: Caller, key: str, *, limit: int, offset: int
) -> History:
    """Saved versions of `key`, newest first (version 0, the defaults, is never saved)."""
    _admin(caller)
    lookup(key)
    repo = SettingsRepository(uow.session)
    items = await repo.history(key, limit=limit, offset=offset)
    return History(items, await repo.count(key))
