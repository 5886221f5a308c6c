"""The CLI client's connection: options win over the config file, which fills the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.cli_client.config import DEFAULT_API, ConfigError, resolve


def test_the_file_fills_what_options_leave_unset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cli.toml"
    path.write_text('api = "http://ops:8000/"\nuser = "alice"\nroles = ["admin", "ops"]\n')
    monkeypatch.setenv("OPS_CLI_CONFIG", str(path))
    connection = resolve(None, "bob", None, None)
    assert connection.api == "http://ops:8000"
    assert connection.user == "bob"
    assert connection.headers() == {"X-User-ID": "bob", "X-User-Roles": "admin,ops"}


def test_no_file_means_the_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPS_CLI_CONFIG", str(tmp_path / "absent.toml"))
    assert resolve(None, None, None, None).api == DEFAULT_API


def test_unknown_keys_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "cli.toml"
    path.write_text('url = "http://ops"\n')
    monkeypatch.setenv("OPS_CLI_CONFIG", str(path))
    with pytest.raises(ConfigError, match="unknown keys url"):
        resolve(None, None, None, None)
