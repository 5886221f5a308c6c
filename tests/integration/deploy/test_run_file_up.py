"""`scripts/daprlocal.py up -f` starts what a run file says: a small app and its real daprd
answer (the sidecar invokes the app), the app has the CLI's variables and `env`, daprd does
not, logs go where the file says; SIGTERM stops both."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.fixtures.database import ROOT, daprlocal

LAUNCHER = ROOT / "scripts" / "daprlocal.py"

RUN_FILE = """\
version: 1
common:
  resourcesPaths: [./resources]
  configFilePath: ./config.yaml
  runtimePath: ./runtime
  placementHostAddress: ""
  env: {GREETING: hello}
apps:
  - appID: echo
    appDirPath: ./svc
    appPort: {app}
    daprHTTPPort: {http}
    daprGRPCPort: {grpc}
    metricsPort: {metrics}
    appLogDestination: file
    command: ["sh", "-c", "env > env.txt; exec {python} -m http.server $APP_PORT --bind 127.0.0.1"]
"""


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    (tmp_path / "svc").mkdir()
    (tmp_path / "resources").mkdir()
    (tmp_path / "config.yaml").write_text(
        "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata: {name: local}\nspec: {}\n"
    )
    (tmp_path / "runtime/.dapr/bin").mkdir(parents=True)
    (tmp_path / "runtime/.dapr/bin/daprd").symlink_to(daprlocal.daprd_path())
    ports = {k: daprlocal.free_port() for k in ("app", "http", "grpc", "metrics")}
    text = RUN_FILE
    for key, value in {**ports, "python": sys.executable}.items():
        text = text.replace("{" + key + "}", str(value))
    (tmp_path / "dapr.yaml").write_text(text)
    return tmp_path, ports


def _pids(output: Path, launcher: subprocess.Popen[bytes]) -> tuple[int, int]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for line in output.read_text().splitlines():
            if line.startswith("echo: daprd pid "):
                daprd, app = line.split(";")[0].removeprefix("echo: daprd pid ").split(", app pid ")
                return int(daprd), int(app)
        assert launcher.poll() is None, output.read_text()
        time.sleep(0.1)
    raise TimeoutError(output.read_text())


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().decode()
    return dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)


def test_up_starts_the_app_and_its_daprd(project: tuple[Path, dict[str, int]]) -> None:
    folder, ports = project
    output = folder / "launcher.out"
    with output.open("wb") as out:
        launcher = subprocess.Popen(
            [sys.executable, str(LAUNCHER), "up", "-f", str(folder / "dapr.yaml")],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd="/",
        )
    try:
        daprd_pid, app_pid = _pids(output, launcher)
        dapr = f"http://127.0.0.1:{ports['http']}"
        daprlocal.wait_http(dapr + "/v1.0/healthz", expect=(204,))  # app discovered too
        # through the sidecar to the app (service invocation): both answer
        url = f"{dapr}/v1.0/invoke/echo/method/env.txt"
        with urllib.request.urlopen(url, timeout=10) as response:
            env = dict(
                line.split("=", 1) for line in response.read().decode().splitlines() if "=" in line
            )
        assert env["APP_ID"] == "echo"
        assert env["APP_PORT"] == str(ports["app"])
        assert env["DAPR_HTTP_PORT"] == str(ports["http"])
        assert env["DAPR_GRPC_PORT"] == str(ports["grpc"])
        assert env["GREETING"] == "hello"
        assert env["PWD"] == str(folder / "svc")  # run in appDirPath
        assert "GREETING" not in _environ(daprd_pid)  # env is for apps only
        logs = folder / "svc/.dapr/logs"
        assert len(list(logs.glob("echo_daprd_*.log"))) == 1  # default: daprd to a file
        assert len(list(logs.glob("echo_app_*.log"))) == 1
    finally:
        launcher.send_signal(signal.SIGTERM)
        assert launcher.wait(30) == 0, output.read_text()
    for pid in (daprd_pid, app_pid):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_up_refuses_a_run_file_without_daprd(project: tuple[Path, dict[str, int]]) -> None:
    folder, _ = project
    (folder / "runtime/.dapr/bin/daprd").unlink()
    result = subprocess.run(
        [sys.executable, str(LAUNCHER), "up", "-f", str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"echo: no daprd at {folder}/runtime/.dapr/bin/daprd" in result.stderr
