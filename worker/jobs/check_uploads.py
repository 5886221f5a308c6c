"""Waiting tasks whose bytes reached the store unannounced start; those never uploaded expire.

The store is asked outside any transaction (S3 HEADs must not hold SQLite's write lock); each
task is then settled in its own short transaction with a conditional update, so replicas and a
concurrent upload never settle one task twice.
"""

from __future__ import annotations

from datetime import timedelta

from service.bootstrap import Resources
from service.clock import utcnow
from service.db.engine import session_scope
from service.usecases import uploads
from service.usecases.files import FilePolicy

BATCH = 200


async def run(resources: Resources) -> str:
    async with session_scope(resources.sessionmaker) as session:
        items = await uploads.waiting(session, limit=BATCH)
    found = await uploads.present(resources.store, [item.key for item in items])
    policy = FilePolicy.from_settings(resources.settings)
    wait = timedelta(seconds=resources.settings.upload_wait_seconds)
    counts = {"released": 0, "expired": 0}
    for item, there in zip(items, found, strict=True):
        async with session_scope(resources.sessionmaker) as session:
            outcome = await uploads.settle(
                session, resources.store, item, found=there, policy=policy, wait=wait, now=utcnow()
            )
        if outcome is not None:
            counts[outcome] += 1
    if counts["released"] or counts["expired"]:
        resources.relay.kick()
    return f"{counts['released']} uploads detected, {counts['expired']} waiting tasks expired"
