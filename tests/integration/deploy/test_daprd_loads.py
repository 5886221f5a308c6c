"""daprd 1.18.3 loads the Dapr resources `kubectl kustomize k8s` renders: every Component scoped to
an app id is initialised by that app's sidecar (its metadata API lists it), the Resiliency
and the Configuration load, and a broken copy makes daprd refuse to start.

The CRD schemas check structure; this checks what only the runtime knows (component types
and versions, cron schedules, policy names the targets refer to). Standalone daprd has no
Kubernetes secret store, so the Redis Secret's keys become values (a local Redis on a free
port), and NAMESPACE is the manifests' namespace, as k8s/README.md describes."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.database import daprlocal
from tests.unit.deploy import checks

NAMESPACE = "common-operations"


def _resources(objects: list[dict[str, Any]], folder: Path, redis_port: int) -> Path:
    """The rendered Dapr resources as daprd's standalone loader reads them; the Configuration
    goes to its own file (--config)."""
    folder.mkdir()
    for obj in objects:
        if not checks.is_dapr(obj) or obj["kind"] == "Configuration":
            continue
        for item in obj["spec"].get("metadata", []):
            ref = item.pop("secretKeyRef", None)
            if ref is not None:
                item["value"] = f"127.0.0.1:{redis_port}" if ref["key"] == "redis-host" else ""
        name = f"{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"
        (folder / name).write_text(yaml.safe_dump(obj))
    (config,) = [o for o in objects if o["kind"] == "Configuration"]
    (folder.parent / "config.yaml").write_text(yaml.safe_dump(config))
    return folder


def _sidecar(daprd: str, workdir: Path, app_id: str, resources: Path) -> Any:
    http_port = daprlocal.free_port()
    proc = daprlocal.Proc(
        f"daprd-{app_id}",
        [
            daprd,
            "--app-id",
            app_id,
            "--dapr-http-port",
            str(http_port),
            "--dapr-grpc-port",
            str(daprlocal.free_port()),
            "--dapr-internal-grpc-port",
            str(daprlocal.free_port()),
            "--metrics-port",
            str(daprlocal.free_port()),
            "--dapr-listen-addresses",
            "127.0.0.1",
            "--resources-path",
            str(resources),
            "--config",
            str(resources.parent / "config.yaml"),
            "--log-level",
            "info",
        ],
        workdir / f"daprd-{app_id}.log",
        {"NAMESPACE": NAMESPACE},
    ).start()
    proc.http_port = http_port
    return proc


@pytest.fixture
def redis(tmp_path: Path) -> Any:
    server = daprlocal.Redis(daprlocal.free_port(), tmp_path).start()
    yield server
    server.stop()


def _scoped(objects: list[dict[str, Any]], app_id: str) -> set[tuple[str, str]]:
    return {
        (o["metadata"]["name"], o["spec"]["type"])
        for o in objects
        if o["kind"] == "Component" and app_id in o.get("scopes", [app_id])
    }


@pytest.mark.parametrize("app_id", ["operations-api", "operations-worker"])
def test_daprd_loads_the_rendered_resources(app_id: str, redis: Any, tmp_path: Path) -> None:
    objects = checks.rendered()
    resources = _resources(objects, tmp_path / "resources", redis.port)
    sidecar = _sidecar(daprlocal.daprd_path(), tmp_path, app_id, resources)
    try:
        url = f"http://127.0.0.1:{sidecar.http_port}"
        daprlocal.wait_http(url + "/v1.0/healthz/outbound", expect=(204,), proc=sidecar)
        with urllib.request.urlopen(url + "/v1.0/metadata", timeout=5) as response:
            metadata = json.load(response)
        loaded = {(c["name"], c["type"]) for c in metadata["components"]}
        expected = _scoped(objects, app_id)
        assert loaded == expected
        # api: pubsub and broadcast; worker: pubsub and its 8 cron bindings
        assert len(expected) == (2 if app_id == "operations-api" else 9)
        resiliencies = [o["metadata"]["name"] for o in objects if o["kind"] == "Resiliency"]
        assert [r["name"] for r in metadata["resiliencies"]] == resiliencies
    finally:
        sidecar.stop()


@pytest.mark.parametrize(
    ("manifest", "old", "new", "named"),
    [
        (
            "dapr/cron-bindings.yaml",
            'value: "*/30 * * * * *"',  # the one binding that fires every 30 s
            'value: "*/30 * * * * * * *"',
            "cron-analytics-rollup",
        ),
        ("dapr/pubsub.yaml", "type: pubsub.redis", "type: pubsub.rediss", "pubsub.rediss"),
    ],
)
def test_daprd_refuses_a_broken_copy(
    manifest: str, old: str, new: str, named: str, redis: Any, tmp_path: Path
) -> None:
    folder = checks.copy_tree(checks.K8S, tmp_path)
    checks.edit(folder / manifest, old, new)
    resources = _resources(checks.kustomize(folder), tmp_path / "resources", redis.port)
    sidecar = _sidecar(daprlocal.daprd_path(), tmp_path, "operations-worker", resources)
    try:
        assert sidecar.popen.wait(60) != 0
        assert named in sidecar.tail(), sidecar.tail()
    finally:
        sidecar.stop()
