"""Who is calling: identity forwarded by the gateway."""

from __future__ import annotations

from dataclasses import dataclass, field

ADMIN_ROLE = "admin"
SERVICE_ROLE = "service"


@dataclass(frozen=True, slots=True)
class Caller:
    """A user (sees their own tasks), an admin (sees all) or an internal service."""

    user_id: str
    roles: frozenset[str] = field(default_factory=frozenset)

    @property
    def sees_all(self) -> bool:
        return bool(self.roles & {ADMIN_ROLE, SERVICE_ROLE})

    def may_see(self, owner: str) -> bool:
        return self.sees_all or owner == self.user_id

    def has_role(self, role: str | None) -> bool:
        """Whether the caller holds `role` (None: no role needed); the service token holds all."""
        return role is None or role in self.roles or SERVICE_ROLE in self.roles


SYSTEM = Caller("system", frozenset({SERVICE_ROLE}))
