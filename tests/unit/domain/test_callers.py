"""Caller: who sees which tasks."""

from __future__ import annotations

import pytest

from service.domain.callers import ADMIN_ROLE, SERVICE_ROLE, SYSTEM, Caller


class TestCallerVisibility:
    def test_a_user_sees_only_their_own_tasks(self) -> None:
        alice = Caller("alice")
        assert not alice.sees_all
        assert alice.may_see("alice")
        assert not alice.may_see("bob")

    @pytest.mark.parametrize("role", [ADMIN_ROLE, SERVICE_ROLE])
    def test_admins_and_services_see_everyone(self, role: str) -> None:
        caller = Caller("root", frozenset({role}))
        assert caller.sees_all
        assert caller.may_see("bob")

    def test_other_roles_grant_nothing(self) -> None:
        caller = Caller("carol", frozenset({"editor", "viewer"}))
        assert not caller.sees_all
        assert not caller.may_see("bob")

    def test_the_system_caller_is_internal(self) -> None:
        assert SYSTEM.sees_all
        assert SERVICE_ROLE in SYSTEM.roles
