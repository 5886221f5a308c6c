"""Waiting tasks whose bytes reached the store unannounced start; those never uploaded expire.

Bytes the service must refuse (too large, not the announced size or SHA-256) are deleted and
their task fails saying why: no client is there to answer, and expiring it later as "not
uploaded" would be false. The store is asked (and the bytes hashed) outside any transaction
(S3 reads must not hold SQLite's write lock); each task is then settled in its own short
transaction with a conditional update, so replicas and a concurrent upload never settle one
task twice.
"""

from __future__ import annotations

from datetime import timedelta

from service.bootstrap import Resources
from service.clock import utcnow
from service.usecases.files import FilePolicy
from service.usecases.uploads import expiry

BATCH = 200


async def run(resources: Resources) -> str:
    async with resources.unit() as uow:
        items = await expiry.waiting(uow, limit=BATCH)
    policy = FilePolicy.from_settings(resources.settings)
    arrivals = await expiry.arrivals(resources.store, items, policy)
    wait = timedelta(seconds=resources.settings.upload_wait_seconds)
    counts = {"released": 0, "refused": 0, "expired": 0}
    for item, arrival in zip(items, arrivals, strict=True):
        async with resources.unit() as uow:
            outcome = await expiry.settle(
                uow,
                resources.store,
                item,
                arrival=arrival,
                policy=policy,
                wait=wait,
                now=utcnow(),
            )
        if outcome is not None:
            counts[outcome] += 1
    if any(counts.values()):
        resources.relay.kick()
    return (
        f"{counts['released']} uploads detected, {counts['refused']} refused, "
        f"{counts['expired']} waiting tasks expired"
    )
