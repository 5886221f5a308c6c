"""The caller of a request, from its identity headers: the rules of every edge, without FastAPI.

The API reads the headers through its FastAPI dependencies (service.web.deps, which document
them as security schemes), the worker's app from the request as those dependencies would; both
then end here, and gRPC (service.rpc) calls `identify` with its metadata.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated

from pydantic import Field, TypeAdapter, ValidationError

from service.bootstrap import Resources
from service.domain.callers import SERVICE_ROLE, Caller
from service.domain.errors import InvalidInput, Unauthenticated
from service.web.problems import RequestInvalid

if TYPE_CHECKING:  # PyJWT is imported only where tokens are on (bootstrap._verifier)
    from service.tokens import TokenVerifier

#: Longest X-User-ID (tasks.requested_by) and X-User-Roles, as text.
USER_ID_MAX = 128
USER_ROLES_MAX = 512
#: Longest X-User-Roles as received, refused as invalid input before any other check.
ROLES_HEADER_MAX = 2048
_ROLES_HEADER = TypeAdapter(Annotated[str, Field(max_length=ROLES_HEADER_MAX)])
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def header_text(value: str | None, name: str, max_length: int) -> str | None:
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


async def caller_of(
    resources: Resources,
    *,
    user_id: str | None,
    user_roles: str | None,
    service_token: str | None,
    bearer: str | None,
) -> Caller:
    """The caller of an HTTP request from its identity headers as received (see `identify`)."""
    return await identify(
        resources,
        user_id=header_text(user_id, "x-user-id", USER_ID_MAX),  # tasks.requested_by
        user_roles=header_text(user_roles, "x-user-roles", USER_ROLES_MAX),
        service_token=service_token,
        bearer=bearer,
    )


async def caller_from_headers(resources: Resources, headers: Mapping[str, str]) -> Caller:
    """The caller of a request to an app without FastAPI (the worker's), its headers read as
    the API's dependencies read them: an empty X-User-ID or X-Service-Token is none, the Bearer
    credential only of that scheme, an X-User-Roles past ROLES_HEADER_MAX a 422 first."""
    roles = headers.get("x-user-roles")
    if roles is not None:
        try:
            _ROLES_HEADER.validate_python(roles)
        except ValidationError as error:
            found = [{**e, "loc": ("header", "X-User-Roles", *e["loc"])} for e in error.errors()]
            raise RequestInvalid(found) from None
    return await caller_of(
        resources,
        user_id=headers.get("x-user-id") or None,
        user_roles=roles,
        service_token=headers.get("x-service-token") or None,
        bearer=_bearer(headers.get("authorization")),
    )


def _bearer(authorization: str | None) -> str | None:
    """The credential of `Authorization: Bearer <credential>`, as FastAPI's HTTPBearer reads it."""
    scheme, _, credential = (authorization or "").partition(" ")
    credential = credential.strip()
    if not scheme or not credential or scheme.lower() != "bearer":
        return None
    return credential


def _has_service_token(resources: Resources, offered: str | None) -> bool:
    expected = resources.settings.service_token
    if not expected or not offered:
        return False  # an unset token must never match an empty one
    # the header's own bytes (Starlette decoded them as Latin-1) against the token's UTF-8
    return secrets.compare_digest(offered.encode("latin-1"), expected.encode())


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
