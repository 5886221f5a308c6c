"""The deploy files, checked by real tools: `kubectl kustomize k8s` renders; the built-in objects
pass kubernetes-validate --strict for Kubernetes 1.32; the Dapr resources (k8s/dapr and
components/) pass the Dapr 1.18.3 CRD schemas; the Dapr annotations, the pods' security
context and the NetworkPolicies pass their lints. Each check also rejects a broken copy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.deploy import checks


@pytest.fixture
def k8s_copy(tmp_path: Path) -> Path:
    return checks.copy_tree(checks.K8S, tmp_path)


def test_kustomize_renders_every_resource_of_the_base() -> None:
    objects = checks.rendered()
    kinds = sorted({o["kind"] for o in objects})
    assert kinds == [
        "Component",
        "ConfigMap",
        "Configuration",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Job",
        "Namespace",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Resiliency",
        "Service",
        "ServiceAccount",
    ]
    assert {o["metadata"].get("namespace", "common-operations") for o in objects} == {
        "common-operations"
    }


def test_kustomize_refuses_a_missing_resource(k8s_copy: Path) -> None:
    (k8s_copy / "worker-pdb.yaml").unlink()
    with pytest.raises(checks.RenderError, match=r"worker-pdb\.yaml"):
        checks.kustomize(k8s_copy)


def test_kubernetes_objects_pass_strict_validation() -> None:
    objects = [o for o in checks.rendered() if not checks.is_dapr(o)]
    assert len(objects) >= 15
    assert checks.kubernetes_problems(objects) == []


@pytest.mark.parametrize(
    ("manifest", "old", "new", "expected"),
    [
        # an unknown field (strict mode): a typo kubectl apply would refuse
        (
            "api-deployment.yaml",
            "imagePullPolicy: IfNotPresent",
            "imagePullPolicy: IfNotPresent\n          imagePulPolicy: Always",
            "imagePulPolicy",
        ),
        # a wrong type
        ("api-service.yaml", "port: 80", "port: eighty", "eighty"),
        # an apiVersion Kubernetes 1.32 no longer serves
        (
            "worker-pdb.yaml",
            "apiVersion: policy/v1",
            "apiVersion: policy/v1beta1",
            "policy/v1beta1",
        ),
    ],
)
def test_kubernetes_validation_rejects_a_broken_copy(
    k8s_copy: Path, manifest: str, old: str, new: str, expected: str
) -> None:
    checks.edit(k8s_copy / manifest, old, new)
    problems = checks.kubernetes_problems(checks.kustomize(k8s_copy))
    assert len(problems) == 1
    assert expected in problems[0]


def test_dapr_resources_pass_the_crd_schemas() -> None:
    objects = [o for o in checks.rendered() if checks.is_dapr(o)]
    local = checks.documents(checks.COMPONENTS)
    assert sorted({o["kind"] for o in objects}) == ["Component", "Configuration", "Resiliency"]
    assert sorted({o["kind"] for o in local}) == ["Component", "Configuration", "Resiliency"]
    assert checks.dapr_problems(objects) == []
    assert checks.dapr_problems(local) == []


def test_the_dapr_schemas_are_the_runtime_s_with_their_license() -> None:
    folder = checks.DAPR_SCHEMAS
    assert "Apache License" in (folder / "LICENSE").read_text()
    assert sorted(checks.dapr_schemas()) == [
        ("dapr.io/v1alpha1", "Component"),
        ("dapr.io/v1alpha1", "Configuration"),
        ("dapr.io/v1alpha1", "HTTPEndpoint"),
        ("dapr.io/v1alpha1", "MCPServer"),
        ("dapr.io/v1alpha1", "Resiliency"),
        ("dapr.io/v1alpha1", "Subscription"),
        ("dapr.io/v1alpha1", "WorkflowAccessPolicy"),
        ("dapr.io/v2alpha1", "Subscription"),
    ]


_SUBSCRIPTION = """
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: task-created}
spec:
  pubsubname: pubsub
  topic: operations.task.created
  routes:
    rules: [{match: 'event.type == "x"', path: /tasks/x}]
    default: /tasks/unrouted
  bulkSubscribe: {enabled: BULK}
scopes: [operations-worker]
"""


def test_a_subscription_is_checked_too() -> None:
    """None is shipped (subscriptions are programmatic), but one added later is checked. The
    1.18.3 CRD types `bulkSubscribe.enabled` as a boolean (DAPR.md §10 says string: it is not)."""
    good = yaml.safe_load(_SUBSCRIPTION.replace("BULK", "true"))
    bad = yaml.safe_load(_SUBSCRIPTION.replace("BULK", '"true"'))
    assert checks.dapr_problems([good]) == []
    assert checks.dapr_problems([bad]) == [
        "Subscription/task-created: 'true' is not of type 'boolean' (at spec.bulkSubscribe.enabled)"
    ]


@pytest.mark.parametrize(
    ("manifest", "old", "new", "expected"),
    [
        # a typo'd key in a Component's spec (daprd would ignore it, kubectl apply refuses it)
        (
            "dapr/pubsub.yaml",
            "  metadata:\n    - name:",
            "  metdata:\n    - name:",
            "'metdata' was unexpected",
        ),
        # a wrong type in a Resiliency policy
        ("dapr/resiliency.yaml", "maxRetries: 5", "maxRetries: five", "five"),
        # an unknown field in the Configuration
        ("dapr/configuration.yaml", "  tracing:\n", "  tracin:\n    x: 1\n  tracing:\n", "tracin"),
        # a required field missing
        ("dapr/cron-bindings.yaml", "  type: bindings.cron\n", "", "'type' is a required"),
    ],
)
def test_dapr_validation_rejects_a_broken_copy(
    k8s_copy: Path, manifest: str, old: str, new: str, expected: str
) -> None:
    path = k8s_copy / manifest
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    problems = checks.dapr_problems(checks.kustomize(k8s_copy))
    assert any(expected in p for p in problems), problems


def test_dapr_validation_rejects_a_broken_local_component(tmp_path: Path) -> None:
    folder = checks.copy_tree(checks.COMPONENTS, tmp_path)
    checks.edit(folder / "pubsub.yaml", "kind: Component", "kind: Componnent")
    assert checks.dapr_problems(checks.documents(folder)) == [
        "Componnent/pubsub: no CRD in Dapr 1.18.3 for dapr.io/v1alpha1"
    ]


# --- Dapr annotations ---------------------------------------------------------------------


def test_dapr_annotations_pass_the_lint() -> None:
    objects = checks.rendered()
    assert checks.annotation_problems(objects) == []
    enabled = [
        t["metadata"]["annotations"]["dapr.io/app-id"]
        for _, t in checks.pod_templates(objects)
        if t["metadata"].get("annotations", {}).get("dapr.io/enabled") == "true"
    ]
    assert sorted(enabled) == ["operations-api", "operations-worker"]


_WORKER = "worker-deployment.yaml"
_API = "api-deployment.yaml"


@pytest.mark.parametrize(
    ("manifest", "old", "new", "expected"),
    [
        (
            _WORKER,
            'enabled: "true"',
            'enabled: "yes"',
            "dapr.io/enabled is 'yes', not exactly \"true\"",
        ),
        (_WORKER, 'enabled: "true"', 'enabled: "True"', "dapr.io/enabled is 'True'"),
        (
            _WORKER,
            'app-id: "operations-worker"',
            f'app-id: "{"w" * 59}"',
            "is not a DNS label of <= 58 chars",
        ),
        (_WORKER, 'app-id: "operations-worker"', 'app-id: "Operations_Worker"', "not a DNS label"),
        (_API, 'app-id: "operations-api"', 'app-id: "operations-worker"', "is also Deployment"),
        (_WORKER, 'app-port: "8001"', 'app-port: "8000"', "'8000' is no container's port [8001]"),
        (
            _WORKER,
            'app-protocol: "http"',
            'app-protocol: "tcp"',
            "app-protocol 'tcp' is not one of",
        ),
        (
            _API,
            'dapr.io/config: "operations"',
            'dapr.io/config: "operation"',
            "names no Configuration",
        ),
        # below the handlers' checkpoint time (OPS_SHUTDOWN_GRACE_SECONDS 30 in the ConfigMap)
        (
            _WORKER,
            'graceful-shutdown-seconds: "30"',
            'graceful-shutdown-seconds: "20"',
            "graceful-shutdown-seconds 20 < the handlers' checkpoint time 30s",
        ),
        (
            "configmap.yaml",
            'OPS_SHUTDOWN_GRACE_SECONDS: "30"',
            'OPS_SHUTDOWN_GRACE_SECONDS: "45"',
            "checkpoint time 45s",
        ),
        # longer than the pod may take to stop
        (
            _API,
            'graceful-shutdown-seconds: "10"',
            'graceful-shutdown-seconds: "30"',
            "graceful-shutdown-seconds 30 + block-shutdown-duration 25s exceed",
        ),
        (
            _WORKER,
            "terminationGracePeriodSeconds: 60",
            "terminationGracePeriodSeconds: 20",
            "exceed",
        ),
        # ignored or merely logged by the injector
        (
            _WORKER,
            "dapr.io/log-level:",
            "dapr.io/loglevel:",
            "dapr.io/loglevel is not an annotation",
        ),
        (_WORKER, 'metrics-port: "9090"', 'metrics-port: "9o90"', "'9o90', not an integer"),
        (_WORKER, 'log-as-json: "true"', 'log-as-json: "yes"', '\'yes\', not "true" or "false"'),
    ],
)
def test_annotation_lint_rejects_a_broken_copy(
    k8s_copy: Path, manifest: str, old: str, new: str, expected: str
) -> None:
    checks.edit(k8s_copy / manifest, old, new)
    problems = checks.annotation_problems(checks.kustomize(k8s_copy))
    assert any(expected in p for p in problems), problems


def test_the_checkpoint_time_defaults_to_the_setting_s_default(k8s_copy: Path) -> None:
    """Without OPS_SHUTDOWN_GRACE_SECONDS the worker checkpoints for the code default (10 s)."""
    checks.edit(k8s_copy / "configmap.yaml", '  OPS_SHUTDOWN_GRACE_SECONDS: "30"\n', "")
    checks.edit(
        k8s_copy / _WORKER, 'graceful-shutdown-seconds: "30"', 'graceful-shutdown-seconds: "9"'
    )
    assert checks.annotation_problems(checks.kustomize(k8s_copy)) == [
        "Deployment/operations-worker: graceful-shutdown-seconds 9 < the handlers' checkpoint "
        "time 10s (OPS_SHUTDOWN_GRACE_SECONDS)"
    ]


# --- Pods: non-root, read-only root filesystem ----------------------------------------------


def test_pods_run_as_non_root_on_a_read_only_root_filesystem() -> None:
    objects = checks.rendered()
    assert checks.security_problems(objects) == []
    templates = list(checks.pod_templates(objects))
    assert len(templates) == 3  # api, worker, migration Job
    for _, template in templates:
        for container in checks.containers(template):
            assert container["securityContext"]["readOnlyRootFilesystem"] is True


@pytest.mark.parametrize(
    ("manifest", "old", "new", "expected"),
    [
        (
            _API,
            "readOnlyRootFilesystem: true",
            "readOnlyRootFilesystem: false",
            "readOnlyRootFilesystem",
        ),
        (
            _WORKER,
            "allowPrivilegeEscalation: false",
            "allowPrivilegeEscalation: true",
            "allowPrivilegeEscalation",
        ),
        (_WORKER, "drop: [ALL]", "drop: [NET_RAW]", "capabilities"),
        (_API, "runAsUser: 10001", "runAsUser: 0", "runAsUser"),
        (
            "migrate-job.yaml",
            "runAsNonRoot: true\n            capabilities",
            "runAsNonRoot: false\n            capabilities",
            "runAsNonRoot",
        ),
        (_WORKER, "type: RuntimeDefault", "type: Unconfined", "seccompProfile"),
        # the service would write where the root filesystem is read-only
        (
            "configmap.yaml",
            'OPS_DATA_DIR: "/tmp/common-operations"',
            'OPS_DATA_DIR: "/var/lib/operations"',
            "OPS_DATA_DIR=/var/lib/operations is not inside a writable emptyDir",
        ),
        (
            "migrate-job.yaml",
            "value: /tmp/common-operations",
            "value: .data",
            "OPS_DATA_DIR=.data",
        ),
        (
            _WORKER,
            "          emptyDir:\n            sizeLimit: 1Gi",
            "          hostPath: {path: /tmp}\n          # was",
            "/tmp=/tmp is not inside",
        ),
    ],
)
def test_security_lint_rejects_a_broken_copy(
    k8s_copy: Path, manifest: str, old: str, new: str, expected: str
) -> None:
    checks.edit(k8s_copy / manifest, old, new)
    problems = checks.security_problems(checks.kustomize(k8s_copy))
    assert any(expected in p for p in problems), problems


# --- Who may call -----------------------------------------------------------------------------


def test_only_the_gateway_reaches_the_api_and_only_sidecars_the_worker() -> None:
    objects = checks.rendered()
    assert checks.network_problems(objects) == []
    api = {"app.kubernetes.io/name": "common-operations", "app.kubernetes.io/component": "api"}
    worker = {**api, "app.kubernetes.io/component": "worker"}
    sidecars = {("namespace:dapr-system", 50002), ("sidecars", 50002)}
    gateway = {("namespace:api-gateway", 8000), ("namespace:api-gateway", 9000)}
    assert checks.admitted(objects, api) == {*gateway, *sidecars}
    assert checks.admitted(objects, worker) == sidecars
    # the migration Job (and any other pod of the namespace) is reached by nobody
    assert checks.admitted(objects, {"app.kubernetes.io/component": "migration"}) == set()


_POLICY = "networkpolicy.yaml"
_GATEWAY_PEER = (
    "        - namespaceSelector:\n"
    "            matchLabels:\n"
    "              kubernetes.io/metadata.name: api-gateway        # CHANGE in the overlay\n"
)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # no default deny: pods no policy selects are open to everyone
        (
            "  podSelector: {}\n  policyTypes: [Ingress]\n",
            "  podSelector: {matchLabels: {x: y}}\n  policyTypes: [Ingress]\n",
            "no default-deny",
        ),
        # the gateway rule opened to every namespace
        (
            _GATEWAY_PEER,
            "        - namespaceSelector: {}\n",
            'admits other:{"namespaceSelector": {}} to port 8000',
        ),
        # the sidecar rule without a port limit
        (
            "      ports:\n        - {protocol: TCP, port: 50002}\n---",
            "---",
            "operations-api: admits namespace:dapr-system to port all",
        ),
    ],
)
def test_network_lint_rejects_a_broken_copy(
    k8s_copy: Path, old: str, new: str, expected: str
) -> None:
    checks.edit(k8s_copy / _POLICY, old, new)
    problems = checks.network_problems(checks.kustomize(k8s_copy))
    assert any(expected in p for p in problems), problems


def test_network_lint_rejects_the_worker_s_app_port_opened(k8s_copy: Path) -> None:
    path = k8s_copy / _POLICY
    path.write_text(
        path.read_text().rstrip("\n")
        + "\n    - from: [{podSelector: {}}]\n      ports: [{protocol: TCP, port: 8001}]\n"
    )
    problems = checks.network_problems(checks.kustomize(k8s_copy))
    assert problems == [
        'Deployment/operations-worker: admits other:{"podSelector": {}} to port 8001'
    ]


_OVERLAY = """
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [../k8s]
patches:
  - target: {kind: NetworkPolicy, name: operations-api-ingress}
    patch: |-
      - op: replace
        path: /spec/ingress/0/from/0/namespaceSelector/matchLabels/kubernetes.io~1metadata.name
        value: edge
"""


def test_an_overlay_sets_the_gateway_namespace(k8s_copy: Path) -> None:
    """The patch README.md shows for overlays: the gateway's namespace is `edge` there."""
    overlay = k8s_copy.parent / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(_OVERLAY)
    objects = checks.kustomize(overlay)
    assert checks.network_problems(objects, gateway="edge") == []
    assert checks.network_problems(objects) == [
        "Deployment/operations-api: the gateway (api-gateway) cannot reach 8000",
        "Deployment/operations-api: the gateway (api-gateway) cannot reach 9000",
        "Deployment/operations-api: admits namespace:edge to port 8000",
        "Deployment/operations-api: admits namespace:edge to port 9000",
    ]


def _by_name(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def test_the_api_service_targets_the_ports_the_gateway_may_reach() -> None:
    """Each port of the API's Service (HTTP 8000, gRPC 9000) names a container port that the
    NetworkPolicy opens to the gateway's namespace."""
    objects = checks.rendered()
    service = _by_name(objects, "Service", "operations-api")
    deployment = _by_name(objects, "Deployment", "operations-api")
    ports = {
        p["name"]: p["containerPort"]
        for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]
    }
    targets = {ports[p["targetPort"]] for p in service["spec"]["ports"]}
    assert targets == {8000, 9000}
    policy = next(
        o
        for o in objects
        if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "operations-api-ingress"
    )
    gateway_rule = policy["spec"]["ingress"][0]
    assert {p["port"] for p in gateway_rule["ports"]} == targets
