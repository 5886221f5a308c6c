"""Publishes outbox rows that no post-commit kick delivered (crash, broker outage)."""

from __future__ import annotations

from service.bootstrap import Resources


async def run(resources: Resources) -> str:
    sent = await resources.relay.drain()
    return f"{sent} outbox rows published"
