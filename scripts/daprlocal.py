"""Start the API and the worker, each with its own daprd, plus Redis, directly (no Dapr CLI).

The end-to-end tests use these classes; people use the command line:

    .venv/bin/python scripts/daprlocal.py up [--database-url URL] [--workers N]

It renders components/ into a scratch resources folder (Redis port, test scopes, topic
prefix), starts Redis first (daprd exits when its pub/sub cannot connect), then each app and
its sidecar on free loopback ports, and stops everything on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMPONENTS = ROOT / "components"
CONFIG = COMPONENTS / "config" / "operations.yaml"
VENV_BIN = ROOT / ".venv" / "bin"


#: Ports handed out below the kernel's ephemeral range start here.
LOWEST_PORT = 10_000


def free_port() -> int:
    """A loopback port nobody listens on, picked below the kernel's ephemeral range.

    bind(0) answers from the ephemeral range, which the kernel also gives to outgoing
    connections: a port found free there can be taken by a client connection before the
    server it was chosen for binds it (daprd binds seconds later, after its app is up; a CI
    run lost a sidecar that way). Below the range only explicit binds compete.
    """
    low = _ephemeral_low()
    chooser = random.SystemRandom()
    for _ in range(100) if low - LOWEST_PORT > 1000 else ():
        port = chooser.randrange(LOWEST_PORT, low)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # an unusual range: let the kernel choose
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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

    def start(self) -> Proc:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it until it exits
        self.popen = subprocess.Popen(
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
            cwd=ROOT,
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
) -> Path:
    """Copy components/*.yaml with this run's Redis port and extra app ids in the scopes."""
    dest.mkdir(parents=True, exist_ok=True)
    for source in sorted(COMPONENTS.glob("*.yaml")):
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
            "APP_ID": self.app_id,
            **self.env,
        }
        argv = [part.replace("{port}", str(self.app_port)) for part in self.command]
        self.app = Proc(self.app_id, argv, self.workdir / f"{self.app_id}.log", env).start()
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
                "http",
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
                str(CONFIG),
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
    parser.add_argument("command", choices=["up"])
    parser.add_argument("--database-url", default=os.environ.get("OPS_DATABASE_URL", ""))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--redis-port", type=int, default=0)
    args = parser.parse_args(argv)

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
