"""common-ops: dev | api | worker | migrate, and the API client (tasks, import, export, …)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from rich.console import Console

from service.cli_client import commands as client_commands
from service.config import Settings

cli = typer.Typer(help="Common-Operations: task orchestration service.", no_args_is_help=True)
console = Console(stderr=True)
client_commands.register(cli)

Host = Annotated[str | None, typer.Option(help="Interface to listen on")]
Port = Annotated[int | None, typer.Option(help="Port to listen on")]
DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Where the embedded mode keeps its files")
]


def _settings(
    host: str | None = None, port: int | None = None, data_dir: Path | None = None
) -> Settings:
    overrides: dict[str, Any] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    return Settings(**overrides)


def _serve(app: Any, settings: Settings) -> None:
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        lifespan="on",
    )


@cli.command()
def dev(host: Host = None, port: Port = None, data_dir: DataDir = None) -> None:
    """API, worker and scheduler in one process with embedded defaults (SQLite, in-process bus)."""
    from service.app import create_app
    from worker.service import WorkerCompanion

    settings = _settings(host, port, data_dir)
    console.print(
        f"Common-Operations (embedded) on http://{settings.host}:{settings.port} "
        f"— database {settings.safe_database_url}"
    )
    _serve(create_app(settings, companions=[WorkerCompanion()]), settings)


@cli.command()
def api(host: Host = None, port: Port = None, data_dir: DataDir = None) -> None:
    """The API alone."""
    from service.app import create_app

    settings = _settings(host, port, data_dir)
    _serve(create_app(settings), settings)


@cli.command()
def worker(host: Host = None, port: Port = None, data_dir: DataDir = None) -> None:
    """The worker: runner, poller, and the in-process scheduler unless Dapr cron is configured."""
    from worker.app import create_worker_app

    settings = _settings(host, port, data_dir)
    _serve(create_worker_app(settings), settings)


@cli.command()
def migrate(
    database_url: Annotated[str | None, typer.Option(help="Defaults to OPS_DATABASE_URL")] = None,
    data_dir: DataDir = None,
) -> None:
    """Apply the database migrations."""
    from service.db import migrate as migrations

    overrides: dict[str, Any] = {}
    if database_url:
        overrides["database_url"] = database_url
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    settings = Settings(**overrides)
    migrations.upgrade(settings.database_url)
    console.print(f"migrated {settings.safe_database_url}")


def main() -> None:
    cli()
