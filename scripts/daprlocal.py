"""Start the API and the worker, each with its own daprd, directly (no Dapr CLI).

Two ways, both stopped with Ctrl-C:

    .venv/bin/python scripts/daprlocal.py up -f dapr.yaml      # exactly what the run file says
    .venv/bin/python scripts/daprlocal.py check -f dapr.yaml   # validate it, print the plan
    .venv/bin/python scripts/daprlocal.py up [--database-url URL] [--workers N]

`up -f` is `dapr run -f` without the Dapr CLI (its module cannot be downloaded here): the run
file is read with the CLI's own field definitions (dapr/cli v1.18 pkg/standalone/run.go
RunConfig/SharedRunConfig, pkg/runfileconfig/run_file_config.go RunFileConfig/App) and its
rules (pkg/runfileconfig/run_file_config_parser.go; shared DAPR.md §9.1), except that unknown
keys are refused where the CLI silently drops them. Redis must already run (README).

`up` without -f renders components/ into a scratch resources folder (Redis port, test scopes,
topic prefix), starts Redis first (daprd exits when its pub/sub cannot connect), then each app
and its sidecar on free loopback ports. The end-to-end tests use these classes.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
)

ROOT = Path(__file__).resolve().parents[1]
COMPONENTS = ROOT / "components"
CONFIG = COMPONENTS / "config" / "operations.yaml"
#: The run file people start (`up -f dapr.yaml`); the end-to-end tests take their apps from it.
RUN_FILE = ROOT / "dapr.yaml"
VENV_BIN = ROOT / ".venv" / "bin"


#: Ports handed out below the kernel's ephemeral range start here.
LOWEST_PORT = 10_000


def free_port() -> int:
    """A loopback port nobody listens on, picked below the kernel's ephemeral range.

    bind(0) answers from the ephemeral range, which the kernel also gives to outgoing
    connections: a port found free there can be taken by a client connection before the
    server it was chosen for binds it (daprd binds seconds later, after its app is up; a CI
    run lost a sidecar that way). Below the range only explicit binds compete.

    A port is free when chosen, not reserved: two choosers must not be handed the same one
    before either binds it. So a process walks its range in order from a random start (a test
    asking for four ports in a row gets four different ones), and each pytest-xdist worker
    has a slice of the range of its own (PYTEST_XDIST_WORKER, inherited by what it starts).
    """
    low, high = _port_slice(LOWEST_PORT, _ephemeral_low())
    if high - low > 100:
        for _ in range(high - low):
            port = _next_port(low, high)
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    with socket.socket() as s:  # an unusual range: let the kernel choose
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_cursor: list[int] = []


def _next_port(low: int, high: int) -> int:
    if not _cursor:
        _cursor.append(random.SystemRandom().randrange(low, high))
    _cursor[0] = low + (_cursor[0] + 1 - low) % (high - low)
    return _cursor[0]


def _port_slice(low: int, high: int) -> tuple[int, int]:
    """This pytest-xdist worker's share of [low, high) (all of it outside xdist)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    try:
        index, count = int(worker.removeprefix("gw")), int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    except (KeyError, ValueError):
        return low, high
    if not 0 <= index < count:
        return low, high
    size = (high - low) // count
    return low + index * size, low + (index + 1) * size


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def daprd_path() -> str:
    """Build (or reuse) daprd through scripts/build-dapr.sh; its last stdout line is the path."""
    explicit = os.environ.get("OPS_DAPRD")
    if explicit:
        return explicit
    out = subprocess.run(
        [str(ROOT / "scripts" / "build-dapr.sh")], check=True, stdout=subprocess.PIPE, text=True
    )
    return out.stdout.strip().splitlines()[-1]


def wait_http(
    url: str, *, expect: Sequence[int] = (200, 204), timeout: float = 60.0, proc: Proc | None = None
) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive:
            raise RuntimeError(f"{proc.name} exited early; see {proc.log_path}:\n{proc.tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status in expect:
                    return
                last = str(response.status)
        except urllib.error.HTTPError as error:
            last = str(error.code)
        except OSError as error:
            last = str(error)
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready after {timeout}s (last: {last})")


@dataclass
class Proc:
    """A child process with its output in a log file."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    popen: subprocess.Popen[bytes] | None = None
    cwd: Path = ROOT

    def start(self) -> Proc:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it until it exits
        self.popen = subprocess.Popen(
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
            cwd=self.cwd,
            start_new_session=True,
        )
        log.close()
        return self

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL: a crash, as far as anyone else can tell."""
        if self.alive:
            assert self.popen is not None
            self.popen.kill()
            self.popen.wait()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`."""
        if self.alive:
            assert self.popen is not None
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Redis:
    port: int
    workdir: Path
    proc: Proc | None = None

    def start(self) -> Redis:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (scripts/test.sh installs it)")
        data = self.workdir / f"redis-{self.port}"
        data.mkdir(parents=True, exist_ok=True)
        self.proc = Proc(
            f"redis:{self.port}",
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(data),
                "--protected-mode",
                "no",
            ],
            self.workdir / f"redis-{self.port}.log",
        ).start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"redis on {self.port} did not answer PING")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


def render_resources(
    dest: Path,
    *,
    redis_port: int,
    extra_scopes: Sequence[str] = (),
    overrides: dict[str, str] | None = None,
    sources: Sequence[Path] = (COMPONENTS,),
) -> Path:
    """Copy the resources folders' *.yaml (components/ by default) with this run's Redis port
    and extra app ids in the scopes."""
    dest.mkdir(parents=True, exist_ok=True)
    for source in sorted(p for folder in sources for p in folder.glob("*.yaml")):
        text = source.read_text().replace("127.0.0.1:6379", f"127.0.0.1:{redis_port}")
        for old, new in (overrides or {}).items():
            text = text.replace(old, new)
        if extra_scopes and source.name in ("pubsub.yaml", "resiliency.yaml"):
            text = text.rstrip("\n") + "\n" + "".join(f"  - {s}\n" for s in extra_scopes)
        (dest / source.name).write_text(text)
    return dest


@dataclass
class DaprApp:
    """One app process and its sidecar, on their own loopback ports."""

    app_id: str
    command: list[str]
    workdir: Path
    resources: Path
    daprd: str
    env: dict[str, str] = field(default_factory=dict)
    app_token: str | None = None
    app_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    grpc_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    app: Proc | None = None
    sidecar: Proc | None = None
    health_path: str = "/health/live"
    config: Path = CONFIG
    protocol: str = "http"
    cwd: Path = ROOT

    @classmethod
    def from_run_file(
        cls,
        app_id: str,
        workdir: Path,
        resources: Path,
        daprd: str,
        env: dict[str, str],
        *,
        app_token: str | None = None,
        run_file: Path = RUN_FILE,
    ) -> DaprApp:
        """The app `app_id` of the run file, as `up -f` would start it (its command, folder,
        env, config file, app protocol), on this run's free ports and resources; `env` is
        added last (the tests' database, topic prefix, tokens)."""
        (run,) = [a for a in resolve_run_file(run_file) if a.app_id == app_id]
        own = {k: v for k, v in run.app_env.items() if k not in _CLI_VARIABLES}
        return cls(
            app_id,
            ["sh", "-c", 'exec "$@"', "sh", *run.command],
            workdir,
            resources,
            daprd,
            {**own, **env},
            app_token=app_token,
            config=run.config_file,
            protocol=run.app_protocol,
            cwd=run.app_dir,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.app_port}"

    @property
    def dapr_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> DaprApp:
        self.start_app()
        self.start_sidecar()
        return self

    def start_app(self) -> None:
        env = {
            "DAPR_HTTP_PORT": str(self.http_port),
            "DAPR_GRPC_PORT": str(self.grpc_port),
            "DAPR_METRICS_PORT": str(self.metrics_port),
            "APP_ID": self.app_id,
            "APP_PORT": str(self.app_port),
            "APP_PROTOCOL": self.protocol,
            **self.env,
        }
        argv = [part.replace("{port}", str(self.app_port)) for part in self.command]
        log = self.workdir / f"{self.app_id}.log"
        self.app = Proc(self.app_id, argv, log, env, cwd=self.cwd).start()
        wait_http(self.url + self.health_path, proc=self.app)

    def start_sidecar(self, *, wait: bool = True) -> None:
        env = {"APP_API_TOKEN": self.app_token} if self.app_token else {}
        self.sidecar = Proc(
            f"daprd-{self.app_id}",
            [
                self.daprd,
                "--app-id",
                self.app_id,
                "--app-port",
                str(self.app_port),
                "--app-protocol",
                self.protocol,
                "--app-channel-address",
                "127.0.0.1",
                "--dapr-http-port",
                str(self.http_port),
                "--dapr-grpc-port",
                str(self.grpc_port),
                "--metrics-port",
                str(self.metrics_port),
                "--dapr-listen-addresses",
                "127.0.0.1",
                "--resources-path",
                str(self.resources),
                "--config",
                str(self.config),
                "--log-level",
                "info",
            ],
            self.workdir / f"daprd-{self.app_id}.log",
            env,
        ).start()
        if wait:
            wait_http(self.dapr_url + "/v1.0/healthz", proc=self.sidecar)

    def stop(self) -> None:
        for proc in (self.sidecar, self.app):
            if proc is not None:
                proc.stop()


# --- The Dapr CLI's run file (`dapr run -f`) ------------------------------------------------

#: Log destinations of the run file (dapr/cli pkg/standalone/run.go LogDestType).
LogDestination = Literal["console", "file", "fileAndConsole"]
#: What daprd's --app-protocol accepts (the CLI passes the value through).
AppProtocol = Literal["http", "https", "grpc", "grpcs", "h2c"]
#: Env values: the CLI decodes them into map[string]string (yaml.v2 keeps a scalar's text).
EnvValue = StrictStr | StrictBool | StrictInt | StrictFloat


#: Variables the CLI gives every app (DaprApp sets its own for its ports).
_CLI_VARIABLES = {
    "APP_ID",
    "APP_CHANNEL_ADDRESS",
    "APP_PORT",
    "APP_PROTOCOL",
    "DAPR_HTTP_PORT",
    "DAPR_GRPC_PORT",
    "DAPR_METRICS_PORT",
}


class RunFileError(ValueError):
    """The run file is invalid; the message names each offending key by its path."""


class _RunFileModel(BaseModel):
    """Unknown keys are refused (the CLI's yaml.v2 drops them: a typo would go unnoticed);
    values are taken as typed in YAML, as yaml.v2 decodes them (no "8000" for an int)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class SharedRunConfig(_RunFileModel):
    """Keys allowed in `common` and in each app (dapr/cli SharedRunConfig yaml tags)."""

    configFilePath: str = ""
    appProtocol: AppProtocol | None = None
    apiListenAddresses: str = ""
    enableProfiling: bool = False
    logLevel: Literal["debug", "info", "warn", "error", "fatal"] | None = None
    appMaxConcurrency: int = 0
    #: Omitted = localhost:50005, "" = no placement (DAPR.md §9.1).
    placementHostAddress: str | None = None
    resourcesPath: str = ""  # deprecated by the CLI; appended to resourcesPaths
    resourcesPaths: list[str] = Field(default_factory=list)
    appSSL: bool = False
    maxBodySize: str = ""
    readBufferSize: str = ""
    enableAppHealthCheck: bool = False
    appHealthCheckPath: str = ""
    appHealthProbeInterval: int = 0
    appHealthProbeTimeout: int = 0
    appHealthThreshold: int = 0
    enableApiLogging: bool = False
    runtimePath: str = ""
    env: dict[str, EnvValue] = Field(default_factory=dict)
    daprdLogDestination: LogDestination | None = None
    appLogDestination: LogDestination | None = None
    schedulerHostAddress: str | None = None


class RunFileApp(SharedRunConfig):
    """Keys of one entry of `apps` (dapr/cli RunConfig, ContainerConfiguration, App)."""

    appID: str = ""
    appDirPath: str  # required by the CLI
    appChannelAddress: str = ""
    appPort: int = 0
    daprHTTPPort: int = 0
    daprGRPCPort: int = 0
    daprInternalGRPCPort: int = 0
    metricsPort: int = 0
    profilePort: int = 0
    unixDomainSocket: str = ""
    command: list[str] = Field(default_factory=list)
    containerImage: str = ""
    containerImagePullPolicy: Literal["Always", "Never", "IfNotPresent"] | None = None
    createService: bool = False


class RunFile(_RunFileModel):
    """The top level (dapr/cli RunFileConfig)."""

    version: int
    name: str = ""
    common: SharedRunConfig = Field(default_factory=SharedRunConfig)
    apps: list[RunFileApp] = Field(default_factory=list)


def _error_path(loc: Sequence[int | str]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


def run_file_path(path: Path) -> Path:
    """`-f DIR` means DIR/dapr.yaml, as for the CLI."""
    return path / "dapr.yaml" if path.is_dir() else path


def load_run_file(path: Path) -> RunFile:
    """Parse and validate a run file's keys and types; no file system checks yet."""
    path = run_file_path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise RunFileError(f"{path}: {error}") from error
    if not isinstance(document, dict):
        raise RunFileError(f"{path}: not a mapping of run file keys")
    try:
        run_file = RunFile.model_validate(document)
    except ValidationError as error:
        lines = [f"{_error_path(e['loc'])}: {e['msg']}" for e in error.errors()]
        raise RunFileError(f"{path}:\n  " + "\n  ".join(lines)) from error
    if run_file.version == 0:
        raise RunFileError(f"{path}: version: must be a non-zero integer")
    return run_file


@dataclass
class RunApp:
    """One app of a run file after the CLI's rules: absolute paths, common values merged in,
    defaults set, free ports chosen; what `up -f` starts."""

    app_id: str
    app_dir: Path
    command: list[str]
    daprd: Path
    daprd_args: list[str]
    #: What the app gets on top of the launcher's environment (daprd gets none of it).
    app_env: dict[str, str]
    app_port: int
    http_port: int
    grpc_port: int
    metrics_port: int
    resources_paths: list[Path]
    config_file: Path
    app_protocol: str
    daprd_log: LogDestination
    app_log: LogDestination


def _absolute(base: Path, value: str, key: str) -> Path:
    """~ expanded, relative to `base`, and it must exist (CLI resolvePathToAbsAndValidate)."""
    path = Path(value).expanduser()
    path = path if path.is_absolute() else base / path
    path = Path(os.path.normpath(path))
    if not path.exists():
        raise RunFileError(f"{key}: {path} does not exist")
    return path


def _is_zero(value: object) -> bool:
    return value is None or value in ("", 0, False) or value == [] or value == {}


def _dapr_dir(runtime_path: str, environ: Mapping[str, str]) -> Path:
    """<runtimePath>/.dapr, else $DAPR_RUNTIME_PATH/.dapr, else ~/.dapr (CLI GetDaprRuntimePath)."""
    base = runtime_path or environ.get("DAPR_RUNTIME_PATH", "") or str(Path.home())
    return Path(base) / ".dapr"


def _env_text(value: EnvValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def resolve_run_file(
    path: Path,
    *,
    environ: Mapping[str, str] | None = None,
    pick_port: Callable[[], int] = free_port,
) -> list[RunApp]:
    """The apps a run file starts, by the CLI's rules (DAPR.md §9.1):

    * common paths relative to the run file's folder, `appDirPath` too; an app's own paths
      relative to its appDirPath; `~` expanded; every path must exist;
    * resources: the app's → <appDirPath>/.dapr/resources → common's → <runtime>/components;
      config: the app's → <appDirPath>/.dapr/config.yaml → common's → <runtime>/config.yaml;
    * every shared key an app leaves at its zero value takes common's value (so an app cannot
      turn a common `true` off); common `env` keys are added where the app lacks them;
    * daprd is <runtimePath>/.dapr/bin/daprd; ports <= 0 become free ports; appID defaults to
      the name of appDirPath; log destinations default to file (daprd), fileAndConsole (app).
    """
    environ = os.environ if environ is None else environ
    path = run_file_path(path)
    run_file = load_run_file(path)
    base = path.resolve().parent
    common = run_file.common.model_copy(deep=True)
    for key in ("configFilePath", "resourcesPath", "runtimePath"):
        if getattr(common, key):
            setattr(common, key, str(_absolute(base, getattr(common, key), f"common.{key}")))
    common.resourcesPaths = [
        str(_absolute(base, p, f"common.resourcesPaths[{i}]"))
        for i, p in enumerate(common.resourcesPaths)
    ]
    if common.resourcesPath.strip():
        common.resourcesPaths.append(common.resourcesPath)
    return [
        _resolve_app(app.model_copy(deep=True), index, base, common, environ, pick_port)
        for index, app in enumerate(run_file.apps)
    ]


def _resolve_app(
    app: RunFileApp,
    index: int,
    base: Path,
    common: SharedRunConfig,
    environ: Mapping[str, str],
    pick_port: Callable[[], int],
) -> RunApp:
    where = f"apps[{index}]"
    app_dir = _absolute(base, app.appDirPath, f"{where}.appDirPath")
    for key in ("configFilePath", "resourcesPath", "runtimePath"):
        if getattr(app, key):
            setattr(app, key, str(_absolute(app_dir, getattr(app, key), f"{where}.{key}")))
    app.resourcesPaths = [
        str(_absolute(app_dir, p, f"{where}.resourcesPaths[{i}]"))
        for i, p in enumerate(app.resourcesPaths)
    ]
    if app.resourcesPath.strip():
        app.resourcesPaths.append(app.resourcesPath)
    # Resources and config (before the merge, as the CLI does it).
    app.runtimePath = app.runtimePath or common.runtimePath
    dapr_dir = _dapr_dir(app.runtimePath, environ)
    if not app.resourcesPaths:
        local = app_dir / ".dapr" / "resources"
        app.resourcesPaths = (
            [str(local)]
            if local.exists()
            else list(common.resourcesPaths) or [str(dapr_dir / "components")]
        )
    if not app.configFilePath:
        local = app_dir / ".dapr" / "config.yaml"
        app.configFilePath = str(
            local if local.exists() else common.configFilePath or dapr_dir / "config.yaml"
        )
    # Common values fill the shared keys the app left at their zero value.
    for key in SharedRunConfig.model_fields:
        if _is_zero(getattr(app, key)):
            setattr(app, key, copy.deepcopy(getattr(common, key)))
    env = {k: _env_text(v) for k, v in app.env.items()}
    env |= {k: _env_text(v) for k, v in common.env.items() if k not in env}
    return _plan(app, app_dir, dapr_dir, env, pick_port)


def _app_protocol(app: RunFileApp) -> str:
    """APP_PROTOCOL as the CLI computes it (appSSL turns http/grpc into https/grpcs)."""
    protocol = app.appProtocol or "http"
    if app.appSSL and protocol in ("http", "grpc"):
        return {"http": "https", "grpc": "grpcs"}[protocol]
    return protocol


def _plan(
    app: RunFileApp,
    app_dir: Path,
    dapr_dir: Path,
    env: dict[str, str],
    pick_port: Callable[[], int],
) -> RunApp:
    app_id = app.appID or app_dir.name
    app_port = max(app.appPort, 0)
    http_port = app.daprHTTPPort if app.daprHTTPPort > 0 else pick_port()
    grpc_port = app.daprGRPCPort if app.daprGRPCPort > 0 else pick_port()
    internal_port = app.daprInternalGRPCPort if app.daprInternalGRPCPort > 0 else pick_port()
    metrics_port = app.metricsPort if app.metricsPort > 0 else pick_port()
    protocol = _app_protocol(app)
    args = ["--app-id", app_id, "--app-protocol", protocol]
    args += ["--dapr-http-port", str(http_port), "--dapr-grpc-port", str(grpc_port)]
    args += ["--dapr-internal-grpc-port", str(internal_port), "--metrics-port", str(metrics_port)]
    args += ["--config", app.configFilePath]
    for resources in app.resourcesPaths:
        args += ["--resources-path", resources]
    args += ["--app-max-concurrency", str(app.appMaxConcurrency or -1)]
    args += ["--max-body-size", app.maxBodySize or "4Mi"]
    args += ["--read-buffer-size", app.readBufferSize or "4Ki"]
    placement = "localhost" if app.placementHostAddress is None else app.placementHostAddress
    if placement.strip():
        args += [
            "--placement-host-address",
            placement if ":" in placement else placement + ":50005",
        ]
    scheduler = (app.schedulerHostAddress or "").strip()
    if scheduler:
        args += [
            "--scheduler-host-address",
            scheduler if ":" in scheduler else scheduler + ":50006",
        ]
    optional = {
        "--app-port": str(app_port) if app_port else "",
        "--app-channel-address": app.appChannelAddress
        if app.appChannelAddress != "127.0.0.1"
        else "",
        "--dapr-listen-addresses": app.apiListenAddresses,
        "--log-level": app.logLevel or "",
        "--unix-domain-socket": app.unixDomainSocket,
        "--app-health-check-path": app.appHealthCheckPath,
        "--app-health-probe-interval": str(app.appHealthProbeInterval or ""),
        "--app-health-probe-timeout": str(app.appHealthProbeTimeout or ""),
        "--app-health-threshold": str(app.appHealthThreshold or ""),
    }
    args += [part for flag, value in optional.items() if value for part in (flag, value)]
    flags = {
        "--enable-app-health-check": app.enableAppHealthCheck,
        "--enable-api-logging": app.enableApiLogging,
        "--enable-profiling": app.enableProfiling,
    }
    args += [flag for flag, on in flags.items() if on]
    if app.enableProfiling:
        args += ["--profile-port", str(app.profilePort if app.profilePort > 0 else free_port())]
    app_env = {
        "APP_ID": app_id,
        "APP_CHANNEL_ADDRESS": app.appChannelAddress,
        **({"APP_PORT": str(app_port)} if app_port else {}),
        "DAPR_HTTP_PORT": str(http_port),
        "DAPR_GRPC_PORT": str(grpc_port),
        "DAPR_METRICS_PORT": str(metrics_port),
        "APP_PROTOCOL": protocol,
        **env,
    }
    return RunApp(
        app_id=app_id,
        app_dir=app_dir,
        command=list(app.command),
        daprd=dapr_dir / "bin" / "daprd",
        daprd_args=args,
        app_env=app_env,
        app_port=app_port,
        http_port=http_port,
        grpc_port=grpc_port,
        metrics_port=metrics_port,
        resources_paths=[Path(p) for p in app.resourcesPaths],
        config_file=Path(app.configFilePath),
        app_protocol=protocol,
        daprd_log=app.daprdLogDestination or "file",
        app_log=app.appLogDestination or "fileAndConsole",
    )


class _Output:
    """A child's output to the console, a log file, or both (the run file's destinations);
    files are <appDirPath>/.dapr/logs/<appID>_<app|daprd>_<time>.log as the CLI names them."""

    def __init__(self, app: RunApp, kind: str, destination: LogDestination) -> None:
        self.prefix = f"== {kind.upper()} - {app.app_id} == ".encode()
        self.console = destination in ("console", "fileAndConsole")
        self.file: BinaryIO | None = None
        if destination in ("file", "fileAndConsole"):
            folder = app.app_dir / ".dapr" / "logs"
            folder.mkdir(parents=True, exist_ok=True)
            stamp = time.strftime("%Y%m%d%H%M%S")
            self.file = open(folder / f"{app.app_id}_{kind}_{stamp}.log", "ab")  # noqa: SIM115

    def start(self, argv: list[str], *, cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
        target: int | BinaryIO = (
            subprocess.PIPE if self.console else (self.file or sys.stdout.buffer)
        )
        popen = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=target, stderr=subprocess.STDOUT, start_new_session=True
        )
        if self.console:
            threading.Thread(target=self._pump, args=(popen,), daemon=True).start()
        elif self.file is not None:
            self.file.close()
        return popen

    def _pump(self, popen: subprocess.Popen[bytes]) -> None:
        assert popen.stdout is not None
        for line in popen.stdout:
            sys.stdout.buffer.write(self.prefix + line)
            sys.stdout.buffer.flush()
            if self.file is not None:
                self.file.write(line)
                self.file.flush()
        if self.file is not None:
            self.file.close()


@dataclass
class RunFileProcess:
    """One started app of a run file: its daprd and its command."""

    app: RunApp
    daprd: subprocess.Popen[bytes]
    command: subprocess.Popen[bytes] | None = None

    def processes(self) -> list[tuple[str, subprocess.Popen[bytes]]]:
        named = [("app", self.command), ("daprd", self.daprd)]
        return [(name, p) for name, p in named if p is not None]


def start_run_app(app: RunApp) -> RunFileProcess:
    """daprd first (with the launcher's environment only), then the app as the CLI runs it:
    `sh -c 'exec "$@"' sh <command…>` in appDirPath, with APP_ID, ports and `env`."""
    if not os.access(app.daprd, os.X_OK):
        raise RunFileError(f"{app.app_id}: no daprd at {app.daprd} (runtimePath/.dapr/bin/daprd)")
    daprd = _Output(app, "daprd", app.daprd_log).start(
        [str(app.daprd), *app.daprd_args], cwd=app.app_dir, env=dict(os.environ)
    )
    started = RunFileProcess(app, daprd)
    if app.command:
        if app.app_port <= 0:  # nothing for daprd to wait for: the app waits for daprd
            _wait_port(app.http_port, daprd)
        started.command = _Output(app, "app", app.app_log).start(
            ["sh", "-c", 'exec "$@"', "sh", *app.command],
            cwd=app.app_dir,
            env={**os.environ, **app.app_env},
        )
    return started


def _wait_port(port: int, popen: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and popen.poll() is None:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    raise TimeoutError(f"daprd did not listen on {port}")


def stop_run_apps(started: Sequence[RunFileProcess], timeout: float = 10.0) -> None:
    """SIGTERM to every app, then every daprd; SIGKILL to what is left after `timeout`."""
    for popens in ([s.command for s in started], [s.daprd for s in started]):
        for popen in popens:
            if popen is not None and popen.poll() is None:
                popen.send_signal(signal.SIGTERM)
        for popen in popens:
            if popen is None:
                continue
            try:
                popen.wait(timeout)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait()


def run_file_up(path: Path) -> int:
    """Start what the run file says; stop everything on Ctrl-C/SIGTERM or when one exits."""
    apps = resolve_run_file(path)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    started: list[RunFileProcess] = []
    code = 0
    try:
        for app in apps:
            running = start_run_app(app)
            started.append(running)
            pids = f"daprd pid {running.daprd.pid}" + (
                f", app pid {running.command.pid}" if running.command else ""
            )
            print(
                f"{app.app_id}: {pids}; app port {app.app_port or '-'}, dapr http "
                f"{app.http_port}, grpc {app.grpc_port}, metrics {app.metrics_port}",
                flush=True,
            )
        while not stop.wait(0.2):
            exited = [
                (s.app.app_id, name, p)
                for s in started
                for name, p in s.processes()
                if p.poll() is not None
            ]
            if exited:
                for app_id, name, popen in exited:
                    print(f"{app_id}: {name} exited with {popen.returncode}", flush=True)
                code = 1
                break
    finally:
        stop_run_apps(started)
    return code


def describe_run_file(path: Path) -> str:
    """What `up -f` would start (ports picked now may differ at start)."""
    lines = []
    for app in resolve_run_file(path):
        lines.append(f"{app.app_id}  (in {app.app_dir})")
        lines.append(f"  daprd: {app.daprd} {' '.join(app.daprd_args)}")
        if app.command:
            lines.append(f"  app:   {' '.join(app.command)}")
            lines.append("  env:   " + " ".join(f"{k}={v}" for k, v in sorted(app.app_env.items())))
    return "\n".join(lines)


def ops_command(kind: str) -> list[str]:
    return [str(VENV_BIN / "common-ops"), kind, "--port", "{port}"]


def dapr_env(database_url: str, topic_prefix: str, data_dir: Path, **extra: str) -> dict[str, str]:
    return {
        "OPS_PUBLISHER": "dapr",
        "OPS_SCHEDULER": "dapr",
        "OPS_DATABASE_URL": database_url,
        "OPS_TOPIC_PREFIX": topic_prefix,
        "OPS_DATA_DIR": str(data_dir),
        "OPS_MIGRATE_ON_START": "false",
        "OPS_LOG_LEVEL": "warning",
        "OPS_GRPC_PORT": "0",  # several API processes may run at once; `up` asks for 9000
        **extra,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up", "check"])
    parser.add_argument(
        "-f", "--run-file", type=Path, help="a Dapr run file (or a folder with dapr.yaml)"
    )
    parser.add_argument("--database-url", default=os.environ.get("OPS_DATABASE_URL", ""))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--redis-port", type=int, default=0)
    args = parser.parse_args(argv)
    if args.run_file is not None or args.command == "check":
        if args.run_file is None:
            parser.error("check needs -f RUN_FILE")
        try:
            if args.command == "check":
                print(describe_run_file(args.run_file))
                return 0
            return run_file_up(args.run_file)
        except RunFileError as error:
            print(f"daprlocal: {error}", file=sys.stderr)
            return 2

    workdir = Path(tempfile.mkdtemp(prefix="ops-dapr-"))
    database_url = args.database_url or f"sqlite+aiosqlite:///{ROOT / '.data' / 'operations.db'}"
    subprocess.run(
        [str(VENV_BIN / "common-ops"), "migrate", "--database-url", database_url], check=True
    )
    daprd = daprd_path()
    redis = Redis(args.redis_port or free_port(), workdir).start()
    resources = render_resources(workdir / "resources", redis_port=redis.port)
    env = dapr_env(database_url, "", ROOT / ".data", OPS_GRPC_PORT="9000")
    apps = [DaprApp("operations-api", ops_command("api"), workdir, resources, daprd, env)]
    apps += [
        DaprApp(
            "operations-worker",
            ops_command("worker"),
            workdir,
            resources,
            daprd,
            {**env, "OPS_WORKER_ID": f"worker-{i}"},
        )
        for i in range(args.workers)
    ]
    try:
        for app in apps:
            app.start()
            print(f"{app.app_id}: app {app.url}  sidecar {app.dapr_url}", flush=True)
        print(f"logs in {workdir}; Ctrl-C stops everything", flush=True)
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        for app in reversed(apps):
            app.stop()
        redis.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
