"""The deploy checks: each takes rendered objects and answers a list of problems (empty = fine).

The tests run them on `kubectl kustomize k8s` and on components/, and on broken copies of the
manifests, which each check must reject. Sources of the rules: shared DAPR.md §10 and the
files in deploy/schemas/dapr-1.18.3/ (the Dapr 1.18.3 CRDs and the sidecar injector's
annotation list).
"""

from __future__ import annotations

import copy
import functools
import json
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from service.config import Settings

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "k8s"
COMPONENTS = ROOT / "components"
DAPR_SCHEMAS = ROOT / "deploy" / "schemas" / "dapr-1.18.3"
#: The Kubernetes version the manifests are validated for (README: Kubernetes >= 1.30).
KUBERNETES_VERSION = "1.32.0"
#: The namespace the base admits to the API's app port (k8s/networkpolicy.yaml).
GATEWAY_NAMESPACE = "api-gateway"
DAPR_NAMESPACE = "dapr-system"
#: daprd's internal gRPC port (sidecar to sidecar), the only sidecar port other pods may reach.
DAPR_INTERNAL_GRPC_PORT = 50002
APP_PROTOCOLS = {"http", "https", "grpc", "grpcs", "h2c"}
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
#: The injector appends "-dapr" to the app id for the app's Service: a 63-character DNS label.
MAX_APP_ID = 63 - len("-dapr")
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}
#: Settings naming a folder the service writes to (and the defaults below them).
WRITABLE_SETTINGS = ("OPS_DATA_DIR", "OPS_FILES_DIR", "HOME", "TMPDIR")


class RenderError(Exception):
    """kubectl kustomize refused the folder."""


def kustomize(folder: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize <folder>`: the objects it renders."""
    out = subprocess.run(
        ["kubectl", "kustomize", str(folder)], capture_output=True, text=True, timeout=120
    )
    if out.returncode != 0:
        raise RenderError(out.stderr.strip())
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def rendered() -> list[dict[str, Any]]:
    return copy.deepcopy(_rendered_once())


@functools.cache
def _rendered_once() -> list[dict[str, Any]]:
    return kustomize(K8S)


def copy_tree(source: Path, tmp_path: Path) -> Path:
    dest = tmp_path / source.name
    shutil.copytree(source, dest)
    return dest


def edit(path: Path, old: str, new: str) -> None:
    """Replace one exact passage in a manifest copy (fails when the passage is not there)."""
    text = path.read_text()
    assert text.count(old) == 1, f"{path.name}: expected exactly one {old!r}"
    path.write_text(text.replace(old, new))


def documents(folder: Path) -> list[dict[str, Any]]:
    """Every YAML document under `folder` (components/: what daprd's loader reads)."""
    found = []
    for path in sorted(folder.rglob("*.yaml")):
        found += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


def name_of(obj: dict[str, Any]) -> str:
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def is_dapr(obj: dict[str, Any]) -> bool:
    return str(obj.get("apiVersion", "")).startswith("dapr.io/")


# --- Kubernetes' own schemas ---------------------------------------------------------------


def kubernetes_problems(
    objects: Iterable[dict[str, Any]], version: str = KUBERNETES_VERSION
) -> list[str]:
    """kubernetes-validate in strict mode (unknown fields refused) for every built-in object."""
    problems = []
    for obj in objects:
        if is_dapr(obj):
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = ".".join(str(p) for p in error.path)
            problems.append(f"{name_of(obj)}: {error.message} (at {where})")
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(
                f"{name_of(obj)}: no schema for {obj.get('apiVersion')} in Kubernetes {version}"
            )
    return problems


# --- Dapr's CRD schemas --------------------------------------------------------------------


@functools.cache
def dapr_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> the JSON schema of each served version of the Dapr CRDs."""
    schemas = {}
    for path in sorted(DAPR_SCHEMAS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                schema = _closed(version["schema"]["openAPIV3Schema"])
                schemas[(f"{group}/{version['name']}", kind)] = schema
    return schemas


def _closed(node: Any) -> Any:
    """The CRD schema as the API server applies it with `kubectl apply` (field validation
    Strict, kubectl's default): unknown fields are errors unless the schema preserves them;
    `nullable` admits null; int-or-string admits both."""
    if isinstance(node, list):
        return [_closed(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _closed(value) for key, value in node.items() if not key.startswith("x-")}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    preserve = node.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in node and "additionalProperties" not in node and not preserve:
        out["additionalProperties"] = False
    return out


#: What a Dapr resource's metadata may carry (ObjectMeta as written in a manifest).
_METADATA_KEYS = {"name", "namespace", "labels", "annotations"}


def dapr_problems(objects: Iterable[dict[str, Any]]) -> list[str]:
    """Every Dapr resource against the schema of its apiVersion and kind in the 1.18.3 CRDs."""
    problems = []
    schemas = dapr_schemas()
    for obj in objects:
        if not is_dapr(obj):
            continue
        schema = schemas.get((obj.get("apiVersion", ""), obj.get("kind", "")))
        if schema is None:
            problems.append(f"{name_of(obj)}: no CRD in Dapr 1.18.3 for {obj.get('apiVersion')}")
            continue
        for error in jsonschema.Draft7Validator(schema).iter_errors(obj):
            where = ".".join(str(p) for p in error.absolute_path)
            problems.append(f"{name_of(obj)}: {error.message} (at {where})")
        metadata = obj.get("metadata", {})
        extra = set(metadata) - _METADATA_KEYS
        if extra or not DNS_LABEL.match(str(metadata.get("name", ""))):
            problems.append(f"{name_of(obj)}: metadata {sorted(metadata)} or its name is invalid")
    return problems


# --- Pod templates -------------------------------------------------------------------------


def pod_templates(objects: Iterable[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], Any]]:
    """(workload, its pod template) for every object that runs pods."""
    for obj in objects:
        if obj.get("kind") in WORKLOADS:
            yield obj, obj["spec"]["template"]


def containers(template: dict[str, Any]) -> list[dict[str, Any]]:
    spec = template["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def config_maps(objects: Iterable[dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {o["metadata"]["name"]: o.get("data", {}) for o in objects if o["kind"] == "ConfigMap"}


def env_value(container: dict[str, Any], name: str, maps: dict[str, dict[str, str]]) -> str | None:
    """A literal environment value as the kubelet composes it (env wins over envFrom)."""
    for item in container.get("env", []):
        if item["name"] == name:
            value: str | None = item.get("value")
            return value
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef")
        if ref and name in maps.get(ref["name"], {}):
            return maps[ref["name"]][name]
    return None


def runs_handlers(container: dict[str, Any]) -> bool:
    """The worker (`common-ops worker`) runs the task handlers, which checkpoint on shutdown."""
    return "worker" in container.get("command", [])[1:2]


def serves_api(container: dict[str, Any]) -> bool:
    return "api" in container.get("command", [])[1:2]


# --- Dapr annotations ----------------------------------------------------------------------


@functools.cache
def sidecar_annotations() -> dict[str, str]:
    """dapr.io/* annotation -> the Go type the 1.18.3 injector parses it into."""
    data = json.loads((DAPR_SCHEMAS / "sidecar-annotations.json").read_text())
    return dict(data["annotations"])


def checkpoint_seconds(container: dict[str, Any], maps: dict[str, dict[str, str]]) -> float:
    """How long running handlers may checkpoint on shutdown: OPS_SHUTDOWN_GRACE_SECONDS
    (service/config.py `shutdown_grace_seconds`) as the container sees it."""
    value = env_value(container, "OPS_SHUTDOWN_GRACE_SECONDS", maps)
    if value is None:
        return float(Settings.model_fields["shutdown_grace_seconds"].default)
    return float(value)


def _go_duration_seconds(text: str) -> float:
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Go duration: {text!r}")
    return sum(float(n) * units[u] for n, u in parts)


def annotation_problems(objects: list[dict[str, Any]]) -> list[str]:
    """What the sidecar injector would get wrong silently, or refuse (DAPR.md §10)."""
    problems: list[str] = []
    maps = config_maps(objects)
    configurations = {o["metadata"]["name"] for o in objects if o["kind"] == "Configuration"}
    app_ids: dict[str, str] = {}
    for workload, template in pod_templates(objects):
        where = name_of(workload)
        annotations = template.get("metadata", {}).get("annotations", {})
        dapr = {k: str(v) for k, v in annotations.items() if k.startswith("dapr.io/")}
        problems += [f"{where}: {p}" for p in _typed(dapr)]
        enabled = dapr.get("dapr.io/enabled")
        if enabled not in (None, "true", "false"):
            problems.append(f'{where}: dapr.io/enabled is {enabled!r}, not exactly "true"')
        if enabled != "true":
            continue
        problems += [f"{where}: {p}" for p in _sidecar(dapr, template, maps, configurations)]
        app_id = dapr.get("dapr.io/app-id", "")
        if app_id in app_ids:
            problems.append(f"{where}: app id {app_id} is also {app_ids[app_id]}'s")
        app_ids[app_id] = where
    return problems


def _typed(dapr: dict[str, str]) -> list[str]:
    """Known keys only (unknown ones are ignored by the injector), values of their Go type
    (an unparseable integer is only logged by the injector, then ignored)."""
    problems = []
    known = sidecar_annotations()
    for key, value in dapr.items():
        kind = known.get(key)
        if kind is None:
            problems.append(f"{key} is not an annotation Dapr 1.18.3 reads")
        elif kind == "bool" and value not in ("true", "false"):
            problems.append(f'{key} is {value!r}, not "true" or "false"')
        elif kind in ("int", "int32") and not re.fullmatch(r"-?\d+", value):
            problems.append(f"{key} is {value!r}, not an integer")
        elif kind == "int32" and not -(2**31) <= int(value) < 2**31:
            problems.append(f"{key} is {value}, out of int32 range")
    return problems


def _sidecar(
    dapr: dict[str, str],
    template: dict[str, Any],
    maps: dict[str, dict[str, str]],
    configurations: set[str],
) -> list[str]:
    problems = []
    app_id = dapr.get("dapr.io/app-id", "")
    if not DNS_LABEL.match(app_id) or len(app_id) > MAX_APP_ID:
        problems.append(f"dapr.io/app-id {app_id!r} is not a DNS label of <= {MAX_APP_ID} chars")
    ports = {
        p["containerPort"]: c
        for c in template["spec"]["containers"]
        for p in c.get("ports", [])
        if p.get("protocol", "TCP") == "TCP"
    }
    app_port = dapr.get("dapr.io/app-port", "")
    app = ports.get(int(app_port)) if app_port.isdigit() else None
    if app is None:
        problems.append(f"dapr.io/app-port {app_port!r} is no container's port {sorted(ports)}")
    protocol = dapr.get("dapr.io/app-protocol", "http")
    if protocol not in APP_PROTOCOLS:
        problems.append(f"dapr.io/app-protocol {protocol!r} is not one of {sorted(APP_PROTOCOLS)}")
    config = dapr.get("dapr.io/config")
    if config is not None and config not in configurations:
        problems.append(f"dapr.io/config {config!r} names no Configuration of the rendered set")
    problems += _shutdown(dapr, template, app, maps)
    return problems


def _shutdown(
    dapr: dict[str, str],
    template: dict[str, Any],
    app: dict[str, Any] | None,
    maps: dict[str, dict[str, str]],
) -> list[str]:
    """The sidecar's shutdown fits the pod's grace period and outlasts the handlers'
    checkpoint, so a stopping worker's last events still find a sidecar."""
    problems = []
    graceful_text = dapr.get("dapr.io/graceful-shutdown-seconds", "")
    if not re.fullmatch(r"\d+", graceful_text):
        return [f"dapr.io/graceful-shutdown-seconds {graceful_text!r} is not set to seconds"]
    graceful = int(graceful_text)
    block = _go_duration_seconds(dapr.get("dapr.io/block-shutdown-duration", "0s"))
    grace = template["spec"].get("terminationGracePeriodSeconds", 30)
    if graceful + block > grace:
        problems.append(
            f"graceful-shutdown-seconds {graceful} + block-shutdown-duration {block:g}s exceed "
            f"terminationGracePeriodSeconds {grace}"
        )
    if app is not None and runs_handlers(app):
        needed = checkpoint_seconds(app, maps)
        if graceful < needed:
            problems.append(
                f"graceful-shutdown-seconds {graceful} < the handlers' checkpoint time "
                f"{needed:g}s (OPS_SHUTDOWN_GRACE_SECONDS)"
            )
    return problems


# --- Security context and writable paths ---------------------------------------------------


def security_problems(objects: list[dict[str, Any]]) -> list[str]:
    """Non-root, read-only root filesystem, no privilege, RuntimeDefault seccomp, and every
    folder the service writes on an emptyDir."""
    problems = []
    maps = config_maps(objects)
    for workload, template in pod_templates(objects):
        pod = template["spec"].get("securityContext", {})
        for container in containers(template):
            where = f"{name_of(workload)} container {container['name']}"
            own = container.get("securityContext", {})
            effective = {**pod, **own}
            if effective.get("runAsNonRoot") is not True:
                problems.append(f"{where}: runAsNonRoot is not true")
            if not isinstance(effective.get("runAsUser"), int) or effective["runAsUser"] <= 0:
                problems.append(f"{where}: runAsUser is not a non-zero uid")
            if effective.get("seccompProfile", {}).get("type") != "RuntimeDefault":
                problems.append(f"{where}: seccompProfile is not RuntimeDefault")
            if own.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: readOnlyRootFilesystem is not true")
            if own.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation is not false")
            if own.get("privileged"):
                problems.append(f"{where}: privileged")
            capabilities = own.get("capabilities", {})
            if "ALL" not in capabilities.get("drop", []) or capabilities.get("add"):
                problems.append(f"{where}: capabilities do not drop ALL (or add some)")
            problems += [f"{where}: {p}" for p in _writable(template, container, maps)]
    return problems


def _writable(
    template: dict[str, Any], container: dict[str, Any], maps: dict[str, dict[str, str]]
) -> list[str]:
    """Each folder the service writes (service/config.py: data_dir, files_dir = data_dir/files;
    HOME, TMPDIR; /tmp itself) lies in a writable emptyDir mount."""
    empty_dirs = {v["name"] for v in template["spec"].get("volumes", []) if "emptyDir" in v}
    mounts = [
        PurePosixPath(m["mountPath"])
        for m in container.get("volumeMounts", [])
        if m["name"] in empty_dirs and not m.get("readOnly")
    ]
    paths = {"/tmp": "/tmp"}
    for name in WRITABLE_SETTINGS:
        value = env_value(container, name, maps)
        if value is None and name == "OPS_DATA_DIR":
            value = str(Settings.model_fields["data_dir"].default)  # relative to the workdir
        if value:
            paths[name] = value
    problems = []
    for name, value in paths.items():
        path = PurePosixPath(value)
        if not path.is_absolute() or not any(path.is_relative_to(m) for m in mounts):
            problems.append(f"{name}={value} is not inside a writable emptyDir mount")
    return problems


# --- Who may call ----------------------------------------------------------------------------


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if selector.get("matchExpressions"):
        raise AssertionError("matchExpressions are not understood by this check")
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def _peer(peer: dict[str, Any]) -> str:
    """A peer of an ingress rule, named: 'namespace:<ns>', 'sidecars', or 'other:<it>'."""
    namespace = peer.get("namespaceSelector")
    pods = peer.get("podSelector")
    if namespace is not None and set(peer) == {"namespaceSelector"}:
        labels = namespace.get("matchLabels", {})
        if set(labels) == {"kubernetes.io/metadata.name"} and not namespace.get("matchExpressions"):
            return f"namespace:{labels['kubernetes.io/metadata.name']}"
    if set(peer) == {"podSelector"} and pods == {
        "matchLabels": {"dapr.io/sidecar-injected": "true"}
    }:
        return "sidecars"
    return f"other:{json.dumps(peer, sort_keys=True)}"


def admitted(objects: list[dict[str, Any]], labels: dict[str, str]) -> set[tuple[str, int]]:
    """(peer, port) pairs the NetworkPolicies admit to a pod with these labels; port 0 = all,
    peer 'anyone' when a rule names none."""
    pairs = set()
    for policy in objects:
        if policy["kind"] != "NetworkPolicy" or not _selects(policy["spec"]["podSelector"], labels):
            continue
        for rule in policy["spec"].get("ingress", []):
            peers = [_peer(p) for p in rule.get("from", [])] or ["anyone"]
            ports = [int(p.get("port", 0)) for p in rule.get("ports", [])] or [0]
            pairs |= {(peer, port) for peer in peers for port in ports}
    return pairs


def network_problems(
    objects: list[dict[str, Any]],
    *,
    gateway: str = GATEWAY_NAMESPACE,
    dapr_namespace: str = DAPR_NAMESPACE,
) -> list[str]:
    """Default deny; the API's ports (HTTP, gRPC) for the gateway's namespace only; the worker's
    app port for nobody; the sidecar's internal gRPC port for the Dapr control plane and
    sidecars only."""
    problems = []
    isolated = any(
        o["kind"] == "NetworkPolicy"
        and o["spec"]["podSelector"] in ({}, None)
        and "Ingress" in o["spec"].get("policyTypes", [])
        and not o["spec"].get("ingress")
        for o in objects
    )
    if not isolated:
        problems.append("no default-deny ingress NetworkPolicy for the whole namespace")
    sidecar_peers = {f"namespace:{dapr_namespace}", "sidecars"}
    for workload, template in pod_templates(objects):
        annotations = template.get("metadata", {}).get("annotations", {})
        if annotations.get("dapr.io/enabled") != "true":
            continue
        pairs = admitted(objects, template["metadata"]["labels"])
        app = next(c for c in template["spec"]["containers"] if c.get("ports"))
        allowed = {(peer, DAPR_INTERNAL_GRPC_PORT) for peer in sidecar_peers}
        if serves_api(app):  # every port the API serves callers on: HTTP, and gRPC
            for app_port in (p["containerPort"] for p in app["ports"]):
                allowed.add((f"namespace:{gateway}", app_port))
                if (f"namespace:{gateway}", app_port) not in pairs:
                    problems.append(
                        f"{name_of(workload)}: the gateway ({gateway}) cannot reach {app_port}"
                    )
        for peer, port in sorted(pairs - allowed):
            problems.append(f"{name_of(workload)}: admits {peer} to port {port or 'all'}")
    return problems
