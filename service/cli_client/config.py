"""Where the client connects and as whom: options, then OPS_CLI_* variables, then the file."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_API = "http://127.0.0.1:8000"
KEYS = ("api", "user", "roles", "token")


def config_path() -> Path:
    """$OPS_CLI_CONFIG, else $XDG_CONFIG_HOME/common-ops/cli.toml (~/.config/…)."""
    named = os.environ.get("OPS_CLI_CONFIG")
    if named:
        return Path(named)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "common-ops" / "cli.toml"


class ConfigError(ValueError):
    """The config file cannot be read."""


def _file_values() -> dict[str, Any]:
    path = config_path()
    if not path.is_file():
        return {}
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{path}: {error}") from error
    unknown = sorted(set(values) - set(KEYS))
    if unknown:
        raise ConfigError(f"{path}: unknown keys {', '.join(unknown)} (known: {', '.join(KEYS)})")
    return values


@dataclass(frozen=True, slots=True)
class Connection:
    api: str
    user: str | None
    roles: str | None
    token: str | None

    def headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.user:
            headers["X-User-ID"] = self.user
        if self.roles:
            headers["X-User-Roles"] = self.roles
        if self.token:
            headers["X-Service-Token"] = self.token
        return headers


def resolve(api: str | None, user: str | None, roles: str | None, token: str | None) -> Connection:
    """Options (typer has already filled them from OPS_CLI_API, OPS_CLI_USER, OPS_CLI_ROLES,
    OPS_CLI_TOKEN when not given) win over the config file."""
    given = {"api": api, "user": user, "roles": roles, "token": token}
    missing = [k for k, v in given.items() if v is None]
    values = _file_values() if missing else {}
    merged = {k: given[k] if given[k] is not None else values.get(k) for k in KEYS}
    return Connection(
        api=str(merged["api"] or DEFAULT_API).rstrip("/"),
        user=_text(merged["user"]),
        roles=_text(merged["roles"]),
        token=_text(merged["token"]),
    )


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)
