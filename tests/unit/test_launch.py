"""`common-ops` starts with the garbage collector off; only the serving commands keep it off
(until their app is built), every other command collects from its start."""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator

import pytest

from service import launch


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    yield
    gc.unfreeze()  # what a served app froze (service.cli._serve)
    gc.enable()


def run(monkeypatch: pytest.MonkeyPatch, *args: str) -> None:
    monkeypatch.setattr("sys.argv", ["common-ops", *args])
    with pytest.raises(SystemExit) as ended:
        launch.main()
    assert ended.value.code == 0


@pytest.mark.parametrize("command", ["tasks", "schedules", "templates", "migrate", "export"])
def test_a_command_that_does_not_serve_collects_garbage(
    monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    run(monkeypatch, command, "--help")
    assert gc.isenabled()


@pytest.mark.parametrize("command", ["dev", "api", "worker"])
def test_a_serving_command_keeps_the_collector_off_until_its_app_is_built(
    monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    run(monkeypatch, command, "--help")  # --help: ends before building anything
    assert not gc.isenabled()


def test_a_serving_command_collects_once_its_app_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from service import cli
    from service.config import Settings

    served: list[object] = []
    monkeypatch.setattr("service.cli.uvicorn.run", lambda app, **_: served.append(app))
    gc.disable()
    cli._serve("the app", Settings())
    assert served == ["the app"]
    assert gc.isenabled()
    assert gc.get_freeze_count() > 0  # start-up's objects: exempt from the collector's passes


def _loaded(code: str, watched: tuple[str, ...]) -> tuple[set[str], str]:
    """Which of the `watched` modules running `code` loaded, in a fresh interpreter, and what
    it printed."""
    report = f"print('LOADED', *sorted(m for m in {watched!r} if m in sys.modules))"
    probe = f"import sys\n{code}\n{report}\n"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    return set(done.stdout.rsplit("LOADED", 1)[1].split()), done.stdout


def _loaded_after(*args: str) -> tuple[set[str], str]:
    """The API client's modules loaded by `common-ops <args>`, and what it printed."""
    run = (
        "from service.launch import main\n"
        f"sys.argv = ['common-ops', *{list(args)!r}]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass"
    )
    return _loaded(run, ("httpx", "service.cli_client.commands"))


@pytest.mark.parametrize("command", ["worker", "api", "dev", "migrate"])
def test_a_serving_command_starts_without_the_api_client(command: str) -> None:
    """The client's commands bring httpx and rich's tables (~35 ms of a server's start-up)."""
    loaded, _ = _loaded_after(command, "--help")
    assert loaded == set()


def test_the_command_lists_the_client_commands_too() -> None:
    loaded, printed = _loaded_after("--help")
    assert "service.cli_client.commands" in loaded
    for command in ("tasks", "schedules", "templates", "import", "export", "worker", "api"):
        assert command in printed


def test_the_servers_load_no_terminal_formatting() -> None:
    """rich (tables, colours) is for the client commands and the dev banner; the worker's and
    the API's processes import everything they serve with but never load it."""
    loaded, _ = _loaded(
        "import service.cli, service.app, worker.app", ("rich", "pygments", "httpx")
    )
    assert loaded == set()


def test_the_worker_starts_without_fastapi_nor_what_it_runs_rarely() -> None:
    """The worker's app is Starlette's own: FastAPI (~0.1 s of its start-up) loads only with a
    request for its description (worker.openapi). Schedules (and croniter), templates, the
    analytics rollup, dead letters and the CloudEvents SDK load with their first use."""
    build = (
        "import service.cli\n"
        "from service.config import Settings\n"
        "from worker.app import create_worker_app\n"
        "create_worker_app(Settings(scheduler='dapr'))"
    )
    rare = (
        "fastapi",
        "pydantic.v1",
        "croniter",
        "cloudevents",
        "service.usecases.schedules",
        "service.usecases.templates",
        "service.usecases.analytics",
        "service.usecases.dead_letters",
    )
    loaded, _ = _loaded(build, rare)
    assert loaded == set()
