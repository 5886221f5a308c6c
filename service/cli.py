"""common-ops: dev | api | worker | migrate, and the API client (tasks, import, export, …)."""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from uvicorn.config import LOGGING_CONFIG

from service.config import Settings
from service.logging import configure_logging

cli = typer.Typer(help="Common-Operations: task orchestration service.", no_args_is_help=True)

#: the commands that serve: the garbage collector stays off until their app is built
SERVERS = frozenset({"dev", "api", "worker"})


@cli.callback()
def resume_collection(ctx: typer.Context) -> None:
    """A command that does not serve collects garbage from its start (see service.launch)."""
    if ctx.invoked_subcommand not in SERVERS:
        gc.enable()


def _say(line: str) -> None:
    """A line on standard error, through rich (loaded here: the worker and the API never need
    it, ~13 ms of their start-up)."""
    from rich.console import Console

    Console(stderr=True).print(line)


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


Workers = Annotated[
    int, typer.Option(min=1, max=64, help="Processes serving the API (uvicorn workers)")
]


def _serve(app: Any, settings: Settings, *, workers: int = 1) -> None:
    """Serve `app` (an app, or with several workers the import string of its factory; each
    worker accepts on a socket of its own, see service.web.serving).

    uvicorn's own access log stays off: the apps write one line per request themselves
    (service/web/observe.py); in JSON mode uvicorn's other loggers go through ours.
    """
    if settings.log_format == "json":
        configure_logging(settings)  # the supervisor's own lines too (its workers set theirs)
    # The app is built: collection resumes (see service.launch), over what is allocated from now
    # on. Enabled as it was, the collector's first passes walked every object of the imports
    # (~170,000, ~30 ms each pass, measured); frozen, they are exempt, as the lifespan then
    # exempts the resources (service.web.lifespan._freeze_startup_heap; its exit unfreezes).
    gc.freeze()
    gc.enable()
    from service.web import http_protocol

    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "access_log": False,
        "lifespan": "on",
        "ws": "none",  # no WebSocket route: uvicorn need not load a WebSocket protocol
        "http": http_protocol.HTTP,  # a response's writes sent as one (service.web.http_protocol)
        "log_config": None if settings.log_format == "json" else LOGGING_CONFIG,
    }
    if workers == 1:
        uvicorn.run(app, **options)
        return
    from service.web import serving

    with contextlib.suppress(KeyboardInterrupt):  # as uvicorn.run: Ctrl+C ends it quietly
        serving.serve_processes(uvicorn.Config(app, workers=workers, factory=True, **options))


def _multiprocess_metrics() -> None:
    """Several processes serve /metrics: each writes its samples to PROMETHEUS_MULTIPROC_DIR
    (prometheus-client's multiprocess mode) and a scrape of any of them reads them all. The
    directory must be set before the workers import the metrics, and empty at start."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        for stale in Path(directory).glob("*.db"):
            stale.unlink()
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="common-ops-metrics-")


@cli.command()
def dev(host: Host = None, port: Port = None, data_dir: DataDir = None) -> None:
    """API, worker and scheduler in one process with embedded defaults (SQLite, in-process bus)."""
    from service.app import create_app
    from worker.service import WorkerCompanion

    settings = _settings(host, port, data_dir)
    if settings.environment != "production" and "OPS_UI_DEV_LOGIN" not in os.environ:
        settings = settings.model_copy(update={"ui_dev_login": True})  # /ui/login picks a user
    _say(
        f"Common-Operations (embedded) on http://{settings.host}:{settings.port} "
        f"— database {settings.safe_database_url}"
    )
    _serve(create_app(settings, companions=[WorkerCompanion()]), settings)


@cli.command()
def api(
    host: Host = None, port: Port = None, data_dir: DataDir = None, workers: Workers = 1
) -> None:
    """The API alone; with --workers N, N processes share the port (and their /metrics)."""
    settings = _settings(host, port, data_dir)
    if workers == 1:
        from service.app import create_app

        _serve(create_app(settings), settings)
        return
    if data_dir is not None:  # each worker process reads its settings from the environment
        os.environ["OPS_DATA_DIR"] = str(data_dir)
    os.environ["OPS_GRPC_REUSE_PORT"] = "true"  # every process serves gRPC on the one port
    _multiprocess_metrics()
    _serve("service.app:app_from_environment", settings, workers=workers)


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
    _say(f"migrated {settings.safe_database_url}")


@functools.cache
def full_cli() -> typer.Typer:
    """`common-ops` with the API client's commands as well (tasks, schedules, templates, import,
    export)."""
    from service.cli_client import commands as client_commands

    client_commands.register(cli)
    return cli


def main() -> None:
    """A serving command (and migrate) starts without the API client's commands: they bring
    httpx and rich's tables and progress bars, ~35 ms of a server's start-up. Every other
    invocation, `--help` included, has them all."""
    serving = len(sys.argv) > 1 and sys.argv[1] in SERVERS | {"migrate"}
    (cli if serving else full_cli())()
