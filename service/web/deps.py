"""The API's request dependencies: the process's resources and the caller (read by the rules
of service.web.callers, which the worker's app applies without FastAPI)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from service.bootstrap import Resources
from service.domain.callers import Caller
from service.web import callers


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


async def get_caller(
    resources: ResourcesDep,
    user_id: Annotated[str | None, Security(USER_ID)],
    service_token: Annotated[str | None, Security(SERVICE_TOKEN)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
    user_roles: Annotated[
        str | None,
        Header(
            alias="X-User-Roles",
            max_length=callers.ROLES_HEADER_MAX,
            description="The caller's roles, comma-separated (admin sees every task); only "
            "with X-User-ID, which it qualifies",
        ),
    ] = None,
) -> Caller:
    """Identity forwarded by the gateway; a valid service token makes an internal caller
    (see `callers.identify`)."""
    return await callers.caller_of(
        resources,
        user_id=user_id,
        user_roles=user_roles,
        service_token=service_token,
        bearer=bearer.credentials if bearer else None,
    )


CallerDep = Annotated[Caller, Depends(get_caller)]
