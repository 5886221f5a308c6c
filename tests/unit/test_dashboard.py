"""The Grafana dashboard in k8s/ is valid JSON and queries only metrics the service defines."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY

import service.telemetry.metrics  # noqa: F401  (registers the metrics)

DASHBOARD = Path(__file__).parents[2] / "k8s" / "grafana" / "common-operations.json"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def defined() -> set[str]:
    """Every series name the registry can expose (a counter's _total, a histogram's parts)."""
    names: set[str] = set()
    for family in REGISTRY.collect():
        for suffix in SUFFIXES.get(family.type, ("",)):
            names.add(family.name + suffix)
    return names


def queried(dashboard: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            found |= set(re.findall(r"\bops_[a-z_]+", target["expr"]))
    return found


def test_the_dashboard_queries_only_defined_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    names = queried(dashboard)
    assert len(names) >= 15, names
    assert not names - defined(), names - defined()


def test_every_service_metric_has_a_panel() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    shown = {re.sub(r"_(total|bucket|count|sum)$", "", n) for n in queried(dashboard)}
    ours = {f.name for f in REGISTRY.collect() if f.name.startswith("ops_")}
    assert not ours - shown, ours - shown
