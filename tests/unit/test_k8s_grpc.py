"""The Kubernetes API Service and Deployment expose the gRPC port the API serves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from service.config import Settings

K8S = Path(__file__).resolve().parents[2] / "k8s"


def _load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((K8S / name).read_text())
    return document


def test_the_api_service_exposes_the_grpc_port_of_the_container() -> None:
    [container] = _load("api-deployment.yaml")["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert ports["grpc"] == int(env["OPS_GRPC_PORT"]) == Settings().grpc_port == 9000
    assert ports["http"] == int(env["OPS_PORT"])
    service = {p["name"]: p for p in _load("api-service.yaml")["spec"]["ports"]}
    assert service["grpc"]["targetPort"] == "grpc"
    assert service["grpc"]["appProtocol"] == "kubernetes.io/h2c"  # plaintext HTTP/2


def test_the_sidecar_speaks_http_to_the_app() -> None:
    """Dapr proxies one app protocol per app id: HTTP on 8000; gRPC callers dial 9000."""
    annotations = _load("api-deployment.yaml")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["dapr.io/app-protocol"] == "http"
    assert annotations["dapr.io/app-port"] == "8000"
