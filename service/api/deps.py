"""Request dependencies: the unit of work (the edge owns the transaction), the caller, resources."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from service.bootstrap import Resources
from service.db.unit_of_work import UnitOfWork
from service.domain.callers import SERVICE_ROLE, Caller
from service.domain.errors import Forbidden, InvalidInput, Unauthenticated


async def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def get_unit(resources: ResourcesDep) -> AsyncIterator[UnitOfWork]:
    """The request's unit of work: committed before the answer is sent, rolled back on error.

    Used with `scope="function"` (UnitDep): FastAPI then runs the code after `yield` when the
    route returns, before the response goes out. With the default scope it would run after
    the response was sent, and a commit that failed there would leave the client holding a
    201 for work that is gone. A failed commit raises here instead and becomes the answer
    (503 while the database cannot be reached, see api/problems.py). The workers of this
    process and the relay hear of what it did only after the commit (Resources.after_commit).
    """
    async with resources.unit() as uow:
        yield uow


UnitDep = Annotated[UnitOfWork, Depends(get_unit, scope="function")]


#: The identity headers as OpenAPI security schemes (they document themselves that way).
USER_ID = APIKeyHeader(
    name="X-User-ID",
    scheme_name="X-User-ID",
    description="The caller, from the gateway: UTF-8 text, at most 128 characters",
    auto_error=False,
)
USER_ROLES = APIKeyHeader(
    name="X-User-Roles",
    scheme_name="X-User-Roles",
    description="The caller's roles, comma-separated (admin sees every task); with X-User-ID",
    auto_error=False,
)
SERVICE_TOKEN = APIKeyHeader(
    name="X-Service-Token",
    scheme_name="X-Service-Token",
    description="The service token of internal callers (executors, other services)",
    auto_error=False,
)
BEARER = HTTPBearer(
    scheme_name="Bearer",
    description="The service token as `Authorization: Bearer <token>`",
    auto_error=False,
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _header_text(value: str | None, name: str, max_length: int) -> str | None:
    """A header's value as the UTF-8 text the gateway sends (Starlette hands every header over
    decoded as Latin-1, which made 'élodie' into 'Ã©lodie')."""
    if value is None:
        return None
    try:
        text = value.encode("latin-1").decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("is not UTF-8 text", field=name) from None
    if len(text) > max_length:
        raise InvalidInput(f"is longer than {max_length} characters", field=name)
    if _CONTROL.search(text):
        raise InvalidInput("must not contain control characters", field=name)
    return text


def _has_service_token(resources: Resources, offered: str | None) -> bool:
    expected = resources.settings.service_token
    if not expected or not offered:
        return False  # an unset token must never match an empty one
    # the header's own bytes (Starlette decoded them as Latin-1) against the token's UTF-8
    return secrets.compare_digest(offered.encode("latin-1"), expected.encode())


async def get_caller(
    resources: ResourcesDep,
    user_id: Annotated[str | None, Security(USER_ID)],
    user_roles: Annotated[str | None, Security(USER_ROLES)],
    service_token: Annotated[str | None, Security(SERVICE_TOKEN)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
) -> Caller:
    """Identity forwarded by the gateway; a valid service token makes an internal caller."""
    x_user_id = _header_text(user_id, "x-user-id", 128)  # tasks.requested_by
    x_user_roles = _header_text(user_roles, "x-user-roles", 512)
    offered = service_token or (bearer.credentials if bearer else None)
    if _has_service_token(resources, offered):
        return Caller(x_user_id or "service", frozenset({SERVICE_ROLE}))
    if not x_user_id or not x_user_id.strip():
        raise Unauthenticated("send the caller's identity in the X-User-ID header")
    roles = frozenset(r.strip().lower() for r in (x_user_roles or "").split(",") if r.strip())
    roles -= {SERVICE_ROLE}  # only the token grants the service role
    return Caller(x_user_id.strip(), roles)


CallerDep = Annotated[Caller, Depends(get_caller)]


async def require_service(caller: CallerDep) -> Caller:
    if SERVICE_ROLE not in caller.roles:
        raise Forbidden("this endpoint is internal: send the service token")
    return caller


ServiceDep = Annotated[Caller, Depends(require_service)]
