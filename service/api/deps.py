"""Request dependencies: the unit of work (the edge owns the transaction), the caller, resources.

The caller and the resources are the worker's too: they are defined in `service.web.deps`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends

from service.db.unit_of_work import UnitOfWork
from service.domain.callers import SERVICE_ROLE, Caller
from service.domain.errors import Forbidden
from service.web.deps import CallerDep as CallerDep, ResourcesDep as ResourcesDep


async def get_unit(resources: ResourcesDep) -> AsyncIterator[UnitOfWork]:
    """The request's unit of work: committed before the answer is sent, rolled back on error.

    Used with `scope="function"` (UnitDep): FastAPI then runs the code after `yield` when the
    route returns, before the response goes out. With the default scope it would run after
    the response was sent, and a commit that failed there would leave the client holding a
    201 for work that is gone. A failed commit raises here instead and becomes the answer
    (503 while the database cannot be reached, see service/web/problems.py). The workers of this
    process and the relay hear of what it did only after the commit (Resources.after_commit).
    """
    async with resources.unit() as uow:
        yield uow


UnitDep = Annotated[UnitOfWork, Depends(get_unit, scope="function")]


async def require_service(caller: CallerDep) -> Caller:
    if SERVICE_ROLE not in caller.roles:
        raise Forbidden("this endpoint is internal: send the service token")
    return caller


ServiceDep = Annotated[Caller, Depends(require_service)]
