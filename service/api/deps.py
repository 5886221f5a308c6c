"""Request dependencies: the session (the edge owns the transaction), the caller, resources."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncSession

from service.bootstrap import Resources
from service.domain.callers import SERVICE_ROLE, Caller
from service.domain.errors import Forbidden, Unauthenticated
from service.usecases import history


async def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def get_session(resources: ResourcesDep) -> AsyncIterator[AsyncSession]:
    """The request's transaction: committed before the answer is sent, rolled back on error.

    Used with `scope="function"` (SessionDep): FastAPI then runs the code after `yield` when
    the route returns, before the response goes out. With the default scope it would run
    after the response was sent, and a commit that failed there would leave the client
    holding a 201 for work that is gone. A failed commit raises here instead and becomes the
    answer (503 while the database cannot be reached, see api/problems.py). The relay and the
    workers are woken only after a commit.
    """
    async with resources.sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
    after_commit(resources, session)


def after_commit(resources: Resources, session: AsyncSession) -> None:
    """Wake the workers and the relay for what a committed session wrote."""
    new_pending = history.new_pending(session)
    if new_pending and resources.local_doorbell is not None:
        # Embedded mode: ring the worker in this process first, so its claim does not wait
        # behind the relay's read of the outbox (the relay still publishes and marks the rows).
        resources.local_doorbell(new_pending)
    if history.wrote_outbox(session):
        resources.relay.kick()


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def _has_service_token(resources: Resources, token: str | None, authorization: str | None) -> bool:
    offered = token or (
        authorization[7:] if authorization and authorization.startswith("Bearer ") else None
    )
    expected = resources.settings.service_token
    if not expected or not offered:
        return False  # an unset token must never match an empty one
    return secrets.compare_digest(offered.encode(), expected.encode())  # str: ASCII only


async def get_caller(
    resources: ResourcesDep,
    x_user_id: Annotated[str | None, Header(max_length=128)] = None,  # tasks.requested_by
    x_user_roles: Annotated[str | None, Header()] = None,
    x_service_token: Annotated[str | None, Header()] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> Caller:
    """Identity forwarded by the gateway; a valid service token makes an internal caller."""
    if _has_service_token(resources, x_service_token, authorization):
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
