"""Due scheduled tasks become pending (their created event rings the workers)."""

from __future__ import annotations

from service.bootstrap import Resources
from service.clock import utcnow
from service.db.engine import session_scope
from service.usecases import execution


async def run(resources: Resources) -> str:
    async with session_scope(resources.sessionmaker) as session:
        due = await execution.promote_due(session, now=utcnow())
    if due:
        resources.relay.kick()
    return f"{len(due)} scheduled tasks became pending"
