"""The Dapr run file (dapr.yaml) read by scripts/daprlocal.py with the Dapr CLI's field
definitions and rules (DAPR.md §9.1): unknown keys refused with their path, paths relative to
the file and to appDirPath, common values filling unset app values, `env` for apps only,
daprd at <runtimePath>/.dapr/bin/daprd."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from tests.fixtures.database import ROOT, daprlocal

_ports = itertools.count(41000)


def _pick() -> int:
    return next(_ports)


def _write(folder: Path, text: str) -> Path:
    path = folder / "dapr.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A project: run file at the top, one app folder, resources, config, a runtime."""
    for folder in ("svc/own-resources", "shared/resources", "rt/.dapr/bin"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "shared/config.yaml").write_text("kind: Configuration\n")
    (tmp_path / "svc/own-config.yaml").write_text("kind: Configuration\n")
    return tmp_path


def test_our_run_file_passes_the_validator() -> None:
    run_file = daprlocal.load_run_file(ROOT / "dapr.yaml")
    assert [a.appID for a in run_file.apps] == ["operations-api", "operations-worker"]
    apps = daprlocal.resolve_run_file(ROOT, pick_port=_pick)  # a folder means folder/dapr.yaml
    assert [a.app_dir for a in apps] == [ROOT, ROOT]
    assert all(a.config_file == ROOT / "components/config/operations.yaml" for a in apps)
    assert all(a.resources_paths == [ROOT / "components"] for a in apps)
    assert [a.app_port for a in apps] == [8000, 8001]
    assert "--placement-host-address" not in apps[0].daprd_args  # "" = no placement


def test_a_typo_d_key_is_refused_with_its_path(tmp_path: Path) -> None:
    """The CLI's yaml.v2 would drop `appid` and `resourcePath` without a word."""
    text = (ROOT / "dapr.yaml").read_text()
    path = _write(
        tmp_path, text.replace("  - appID: operations-worker", "  - appid: operations-worker")
    )
    with pytest.raises(daprlocal.RunFileError) as caught:
        daprlocal.load_run_file(path)
    assert "apps[1].appid: Extra inputs are not permitted" in str(caught.value)
    path = _write(tmp_path, text.replace("resourcesPaths:", "resourcePath:"))
    with pytest.raises(daprlocal.RunFileError, match=r"common\.resourcePath: Extra inputs"):
        daprlocal.load_run_file(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("apps: []\n", r"version: Field required"),
        ("version: 0\n", r"version: must be a non-zero integer"),
        ("version: 1\napps: [{appID: a}]\n", r"apps\[0\]\.appDirPath: Field required"),
        (
            "version: 1\napps: [{appDirPath: ., appPort: '8000'}]\n",
            r"apps\[0\]\.appPort: Input should be a valid integer",
        ),
        ("version: 1\ncommon: {appProtocol: tcp}\n", r"common\.appProtocol: Input should be"),
        ("version: 1\ncommon: {daprdLogDestination: stdout}\n", r"common\.daprdLogDestination"),
        (
            "version: 1\napps: [{appDirPath: ., containerImagePullPolicy: Sometimes}]\n",
            r"containerImagePullPolicy",
        ),
        ("- not a mapping\n", r"not a mapping"),
    ],
)
def test_the_validator_refuses(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(daprlocal.RunFileError, match=message):
        daprlocal.load_run_file(_write(tmp_path, text))


def test_paths_are_relative_to_the_file_and_to_app_dir(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir("/")  # the working directory plays no part
    path = _write(
        tree,
        "version: 1\n"
        "common: {resourcesPaths: [./shared/resources], configFilePath: shared/config.yaml,"
        " runtimePath: ./rt}\n"
        "apps:\n"
        "  - {appDirPath: ./svc, resourcesPaths: [own-resources],"
        " configFilePath: own-config.yaml}\n"
        "  - {appID: b, appDirPath: svc}\n",
    )
    own, shared = daprlocal.resolve_run_file(path, pick_port=_pick)
    assert own.app_id == "svc"  # appID defaults to the folder's name
    assert own.resources_paths == [tree / "svc/own-resources"]
    assert own.config_file == tree / "svc/own-config.yaml"
    assert shared.resources_paths == [tree / "shared/resources"]
    assert shared.config_file == tree / "shared/config.yaml"
    assert own.daprd == shared.daprd == tree / "rt/.dapr/bin/daprd"
    assert own.app_dir == shared.app_dir == tree / "svc"


def test_a_missing_path_is_refused(tree: Path) -> None:
    path = _write(tree, "version: 1\napps: [{appDirPath: svc, configFilePath: nowhere.yaml}]\n")
    with pytest.raises(
        daprlocal.RunFileError,
        match=r"apps\[0\]\.configFilePath: .*svc/nowhere.yaml does not exist",
    ):
        daprlocal.resolve_run_file(path, pick_port=_pick)


def test_app_dir_dapr_folder_comes_before_common(tree: Path) -> None:
    (tree / "svc/.dapr/resources").mkdir(parents=True)
    (tree / "svc/.dapr/config.yaml").write_text("kind: Configuration\n")
    path = _write(
        tree,
        "version: 1\n"
        "common: {resourcesPaths: [shared/resources], configFilePath: shared/config.yaml}\n"
        "apps: [{appDirPath: svc}]\n",
    )
    (app,) = daprlocal.resolve_run_file(path, pick_port=_pick)
    assert app.resources_paths == [tree / "svc/.dapr/resources"]
    assert app.config_file == tree / "svc/.dapr/config.yaml"


def test_without_runtime_path_the_runtime_is_dapr_runtime_path_then_home(tree: Path) -> None:
    path = _write(tree, "version: 1\napps: [{appDirPath: svc}]\n")
    (app,) = daprlocal.resolve_run_file(
        path, environ={"DAPR_RUNTIME_PATH": "/opt/x"}, pick_port=_pick
    )
    assert app.daprd == Path("/opt/x/.dapr/bin/daprd")
    assert app.resources_paths == [Path("/opt/x/.dapr/components")]
    assert app.config_file == Path("/opt/x/.dapr/config.yaml")
    (app,) = daprlocal.resolve_run_file(path, environ={}, pick_port=_pick)
    assert app.daprd == Path.home() / ".dapr/bin/daprd"


def test_common_values_fill_unset_app_values_only(tree: Path) -> None:
    path = _write(
        tree,
        "version: 1\n"
        "common: {enableApiLogging: true, logLevel: debug, appProtocol: grpc,"
        " appHealthCheckPath: /h,"
        " env: {A: common, B: common, N: 5, T: true}}\n"
        "apps:\n"
        "  - {appID: one, appDirPath: svc, logLevel: warn, enableApiLogging: false,"
        " env: {A: app}}\n"
        "  - {appID: two, appDirPath: svc, appProtocol: http}\n",
    )
    one, two = daprlocal.resolve_run_file(path, pick_port=_pick)
    # the app's own value wins; `false` is a zero value, so common's `true` stays (CLI rule)
    assert one.daprd_args[one.daprd_args.index("--log-level") + 1] == "warn"
    assert "--enable-api-logging" in one.daprd_args
    assert one.app_protocol == "grpc"
    assert two.app_protocol == "http"
    assert two.daprd_args[two.daprd_args.index("--app-health-check-path") + 1] == "/h"
    assert {k: one.app_env[k] for k in "ABNT"} == {"A": "app", "B": "common", "N": "5", "T": "true"}
    assert {k: two.app_env[k] for k in "AB"} == {"A": "common", "B": "common"}


def test_ports_env_and_daprd_flags(tree: Path) -> None:
    path = _write(
        tree,
        "version: 1\n"
        "apps:\n"
        "  - {appID: a, appDirPath: svc, appPort: 7000, daprHTTPPort: 7001, daprGRPCPort: 7002,"
        " metricsPort: 7003, command: [python, app.py], env: {X: 'y'}}\n"
        "  - {appID: b, appDirPath: svc, appPort: -1, placementHostAddress: placement,"
        " schedulerHostAddress: '', appSSL: true}\n",
    )
    a, b = daprlocal.resolve_run_file(path, pick_port=_pick)
    assert a.app_env == {
        "APP_ID": "a",
        "APP_CHANNEL_ADDRESS": "",
        "APP_PORT": "7000",
        "APP_PROTOCOL": "http",
        "DAPR_HTTP_PORT": "7001",
        "DAPR_GRPC_PORT": "7002",
        "DAPR_METRICS_PORT": "7003",
        "X": "y",
    }
    args = a.daprd_args
    pairs = dict(itertools.pairwise(args))
    assert pairs["--app-port"] == "7000"
    assert pairs["--dapr-http-port"] == "7001"
    assert pairs["--placement-host-address"] == "localhost:50005"  # omitted = the default
    assert "X" not in " ".join(args)
    # ports <= 0 are chosen; no app port = no --app-port; appSSL turns http into https
    assert b.app_port == 0
    assert "--app-port" not in b.daprd_args
    assert "APP_PORT" not in b.app_env
    assert min(b.http_port, b.grpc_port, b.metrics_port) > 0
    assert b.app_protocol == "https"
    assert b.daprd_args[b.daprd_args.index("--placement-host-address") + 1] == "placement:50005"
    assert "--scheduler-host-address" not in b.daprd_args


def test_the_end_to_end_apps_are_the_run_file_s(tmp_path: Path) -> None:
    """tests/e2e/dapr starts the API and the worker from dapr.yaml (DaprApp.from_run_file):
    the file's command, folder, env and config file, this run's ports and the test's env."""
    worker = daprlocal.DaprApp.from_run_file(
        "operations-worker", tmp_path, tmp_path, "daprd", {"OPS_DATA_DIR": "/x"}
    )
    (run,) = [
        a for a in daprlocal.resolve_run_file(daprlocal.RUN_FILE) if a.app_id == worker.app_id
    ]
    assert worker.command == ["sh", "-c", 'exec "$@"', "sh", *run.command]
    assert "$APP_PORT" in run.command[-1]  # the file's command listens where it is told
    assert worker.cwd == run.app_dir == ROOT
    assert worker.config == run.config_file
    assert worker.env == {
        "OPS_PUBLISHER": "dapr",
        "OPS_SCHEDULER": "dapr",
        "OPS_DATA_DIR": "/x",
        "OPS_MIGRATE_ON_START": "false",
    }
