"""The settings keys the service knows: each registers its definition here."""

from __future__ import annotations

from service.catalog.settings.base import SettingDefinition
from service.catalog.settings.payment import PAYMENT
from service.domain.errors import NotFound

REGISTRY: dict[str, SettingDefinition] = {d.key: d for d in (PAYMENT,)}


def lookup(key: str) -> SettingDefinition:
    """The definition of `key`; NotFound for a key no schema registers."""
    definition = REGISTRY.get(key)
    if definition is None:
        known = ", ".join(sorted(REGISTRY))
        raise NotFound(f"no settings named {key!r}; known keys: {known}")
    return definition
