"""`common-ops` starts with the garbage collector off; only the serving commands keep it off
(until their app is built), every other command collects from its start."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from service import launch


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    yield
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
