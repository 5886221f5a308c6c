"""Apply the Alembic migrations programmatically (CLI `migrate` and the embedded start)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]


def alembic_config(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` to `revision`; safe to run again."""
    url_ = make_url(url)
    if url_.get_backend_name() == "sqlite" and url_.database:
        Path(url_.database).parent.mkdir(parents=True, exist_ok=True)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        command.upgrade(alembic_config(url), revision)
    else:
        # Alembic's env.py runs its own event loop, which cannot nest inside a running one.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(command.upgrade, alembic_config(url), revision).result()
    if url_.get_backend_name() == "sqlite" and url_.database:
        # WAL is a property of the file: set it once here, so no connection has to take the
        # exclusive lock that switching needs while others are open.
        with contextlib.closing(sqlite3.connect(url_.database)) as connection:
            connection.execute("PRAGMA journal_mode=WAL")
