"""Request dependencies: the session (the edge owns the transaction), the caller, resources.

The caller and the resources are the worker's too: they are defined in `service.web.deps`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from service.bootstrap import Resources
from service.domain.callers import SERVICE_ROLE, Caller
from service.domain.errors import Forbidden
from service.usecases import history
from service.web.deps import CallerDep as CallerDep, ResourcesDep as ResourcesDep


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


async def require_service(caller: CallerDep) -> Caller:
    if SERVICE_ROLE not in caller.roles:
        raise Forbidden("this endpoint is internal: send the service token")
    return caller


ServiceDep = Annotated[Caller, Depends(require_service)]
