"""Request dependencies both apps use: the process's resources and the caller."""

from __future__ import annotations

import re
import secrets
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Header, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from service.bootstrap import Resources
from service.domain.callers import SERVICE_ROLE, Caller
from service.domain.errors import InvalidInput, Unauthenticated

if TYPE_CHECKING:  # PyJWT is imported only where tokens are on (bootstrap._verifier)
    from service.tokens import TokenVerifier


async def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


#: The identity headers as OpenAPI security schemes (they document themselves that way).
USER_ID = APIKeyHeader(
    name="X-User-ID",
    scheme_name="X-User-ID",
    description="The caller, from the gateway: UTF-8 text, at most 128 characters",
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
    description="The service token as `Authorization: Bearer <token>`; with OPS_JWT_ENABLED "
    "also the gateway's JWT (the caller's identity)",
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
    service_token: Annotated[str | None, Security(SERVICE_TOKEN)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
    user_roles: Annotated[
        str | None,
        Header(
            alias="X-User-Roles",
            max_length=2048,
            description="The caller's roles, comma-separated (admin sees every task); only "
            "with X-User-ID, which it qualifies",
        ),
    ] = None,
) -> Caller:
    """Identity forwarded by the gateway; a valid service token makes an internal caller
    (see `identify`)."""
    return await identify(
        resources,
        user_id=_header_text(user_id, "x-user-id", USER_ID_MAX),  # tasks.requested_by
        user_roles=_header_text(user_roles, "x-user-roles", USER_ROLES_MAX),
        service_token=service_token,
        bearer=bearer.credentials if bearer else None,
    )


#: Longest X-User-ID (tasks.requested_by) and X-User-Roles, as text.
USER_ID_MAX = 128
USER_ROLES_MAX = 512


async def identify(
    resources: Resources,
    *,
    user_id: str | None,
    user_roles: str | None,
    service_token: str | None,
    bearer: str | None,
) -> Caller:
    """The caller of a request, from its identity as text: the rules of every edge (HTTP
    headers here, gRPC metadata in service.rpc), so both answer alike.

    A service token offered that is not the token is refused (401) rather than ignored: a
    caller that believes itself internal must learn it is not. A Bearer credential that is not
    the token is ignored: the gateway may forward the user's own token beside X-User-ID, unless
    OPS_JWT_ENABLED, when that token is the identity (`_token_caller`).
    """
    if service_token is not None and not _has_service_token(resources, service_token):
        raise Unauthenticated("the X-Service-Token is not this service's token")
    if _has_service_token(resources, service_token or bearer):
        return Caller(user_id or "service", frozenset({SERVICE_ROLE}))
    if resources.tokens is not None:
        return await _token_caller(resources.tokens, bearer, user_id)
    if not user_id or not user_id.strip():
        raise Unauthenticated("send the caller's identity in the X-User-ID header")
    roles = frozenset(r.strip().lower() for r in (user_roles or "").split(",") if r.strip())
    roles -= {SERVICE_ROLE}  # only the token grants the service role
    return Caller(user_id.strip(), roles)


async def _token_caller(tokens: TokenVerifier, bearer: str | None, x_user_id: str | None) -> Caller:
    """With OPS_JWT_ENABLED the caller is the gateway's token: its user and roles claims.

    X-User-Roles is ignored (roles come from the token only); an X-User-ID that names another
    user than the token is refused, as a request that contradicts itself.
    """
    if bearer is None:
        raise Unauthenticated("send the gateway's token as Authorization: Bearer <JWT>")
    caller = await tokens.caller(bearer)
    if x_user_id is not None and x_user_id.strip() != caller.user_id:
        raise Unauthenticated("X-User-ID names another user than the gateway's token")
    return caller


CallerDep = Annotated[Caller, Depends(get_caller)]
