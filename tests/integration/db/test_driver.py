"""The driver's connections (service/db/driver.py): borrowed from the engine's pool, given back
fit for the next user or discarded, and a connection the server ended is the database away."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import text

from service.bootstrap import Resources
from service.db import availability, driver

pytestmark = [pytest.mark.postgres_only, pytest.mark.parametrize("dialect", ["postgresql"])]


async def ended_under_a_statement(resources: Resources, pids: list[int]) -> None:
    """A statement on a connection the server ended meanwhile (its pid added to `pids`)."""
    async with driver.connection(resources.engine) as connection:
        pid = int(await connection.fetchval("SELECT pg_backend_pid()"))
        pids.append(pid)
        async with resources.engine.connect() as other:  # another of the pool's
            await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await asyncio.sleep(0.2)
        await connection.fetchval("SELECT 1")


async def failed_inside_a_transaction(resources: Resources, pids: list[int]) -> None:
    async with driver.connection(resources.engine) as connection:
        pids.append(int(await connection.fetchval("SELECT pg_backend_pid()")))
        await connection.execute("BEGIN")
        raise RuntimeError("the block failed inside a transaction")


async def refused_insert(connection: asyncpg.Connection) -> None:
    async with driver.transaction(connection):
        await connection.execute("INSERT INTO driver_probe VALUES (1)")
        raise RuntimeError("refused")


async def backend_pid(resources: Resources) -> int:
    async with driver.connection(resources.engine) as connection:
        return int(await connection.fetchval("SELECT pg_backend_pid()"))


class TestDriverConnections:
    async def test_a_connection_ended_by_the_server_is_reported_lost_and_replaced(
        self, resources: Resources
    ) -> None:
        pids: list[int] = []
        with pytest.raises(driver.ConnectionLost) as caught:
            await ended_under_a_statement(resources, pids)
        assert availability.is_unavailable(caught.value)  # a 503, a retried drain
        assert await backend_pid(resources) != pids[0]  # the pool opened a new one

    async def test_a_transaction_left_open_is_not_handed_to_the_next_user(
        self, resources: Resources
    ) -> None:
        pids: list[int] = []
        with pytest.raises(RuntimeError):  # as it was: the connection did not break
            await failed_inside_a_transaction(resources, pids)
        async with driver.connection(resources.engine) as connection:
            assert not connection.is_in_transaction()
            assert await connection.fetchval("SELECT pg_backend_pid()") != pids[0]

    async def test_a_transaction_rolls_back_when_its_block_raises(
        self, resources: Resources
    ) -> None:
        async with driver.connection(resources.engine) as connection:
            await connection.execute("CREATE TABLE driver_probe (n int)")
            with pytest.raises(RuntimeError):
                await refused_insert(connection)
            async with driver.transaction(connection, "BEGIN; SET LOCAL lock_timeout = '1s'"):
                await connection.execute("INSERT INTO driver_probe VALUES (2)")
                assert await connection.fetchval("SHOW lock_timeout") == "1s"
            assert await connection.fetchval("SELECT array_agg(n) FROM driver_probe") == [2]
            assert await connection.fetchval("SHOW lock_timeout") == "0"
            await connection.execute("DROP TABLE driver_probe")
        # the same connection, clean, went back to the pool
        assert await backend_pid(resources) == await backend_pid(resources)
