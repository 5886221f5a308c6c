"""The process's cache of stored settings: a TTL, and dropped when `settings.changed` arrives."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from service.domain.settings import SettingVersion


@dataclass
class SettingsCache:
    """Current versions by key, each kept for `ttl` seconds (0: nothing is kept).

    A read that missed notes the key's generation before it goes to the database and stores
    its answer only if no drop came meanwhile: a change committed during that read must not be
    hidden behind the older version it read for a whole TTL.
    """

    ttl: float
    clock: Callable[[], float] = time.monotonic
    _entries: dict[str, tuple[float, SettingVersion]] = field(default_factory=dict)
    _generations: dict[str, int] = field(default_factory=dict)

    def get(self, key: str) -> SettingVersion | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, version = entry
        if self.clock() >= expires:
            self._entries.pop(key, None)
            return None
        return version

    def generation(self, key: str) -> int:
        return self._generations.get(key, 0)

    def put(self, version: SettingVersion, *, generation: int) -> None:
        """Keep `version` unless the key was dropped since `generation` was read."""
        if self.ttl > 0 and self.generation(version.key) == generation:
            self._entries[version.key] = (self.clock() + self.ttl, version)

    def drop(self, key: str) -> None:
        """Forget `key` (a new version was saved, here or by another replica)."""
        self._generations[key] = self.generation(key) + 1
        self._entries.pop(key, None)

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None
