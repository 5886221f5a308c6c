"""End-to-end fixtures: real subprocesses, always killed at teardown."""

from __future__ import annotations

from tests.fixtures.outage import own_postgres
from tests.fixtures.processes import spawner

__all__ = ["own_postgres", "spawner"]
