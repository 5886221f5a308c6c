"""The Dapr cron bindings (components/ for local runs, k8s/dapr/ for Kubernetes) against the one
list of maintenance jobs, service.domain.jobs.JOBS: exactly one binding per job, none extra,
each posting to the route the worker serves for it, as an input binding of the worker only,
on a schedule whose ticks are the job's slot_seconds apart (worker/bindings.py rounds a tick's
time to that slot, so a schedule of another interval would merge or split ticks)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from croniter import croniter
from starlette.routing import Match

from service.domain.jobs import JOBS, JobSchedule
from worker import routes
from worker.jobs import JOBS as WORKER_JOBS

ROOT = Path(__file__).resolve().parents[2]
#: Where each set of bindings lives, and the file that names the worker's Dapr app id there.
PLACES = {
    "components": (ROOT / "components", ROOT / "dapr.yaml"),
    "k8s": (ROOT / "k8s" / "dapr", ROOT / "k8s" / "worker-deployment.yaml"),
}
#: Go durations of `@every` (time.ParseDuration units the schedules may use).
_GO_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
_DESCRIPTORS = {
    "@hourly": "0 0 * * * *",
    "@daily": "0 0 0 * * *",
    "@midnight": "0 0 0 * * *",
    "@weekly": "0 0 0 * * 0",
}


def _documents(folder: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(folder.rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                yield path, document


def cron_bindings(folder: Path) -> dict[str, dict[str, Any]]:
    """Every bindings.cron component under `folder`, by name, with its metadata as a dict."""
    found: dict[str, dict[str, Any]] = {}
    for path, document in _documents(folder):
        spec = document.get("spec", {})
        if spec.get("type") != "bindings.cron":
            continue
        name = document["metadata"]["name"]
        assert name not in found, f"{path}: a second cron binding named {name}"
        metadata = {item["name"]: item["value"] for item in spec.get("metadata", [])}
        found[name] = {"path": path, "scopes": document.get("scopes"), **metadata}
    return found


def worker_app_id(source: Path) -> str:
    """The worker's Dapr app id as the run file (appID) or the Deployment (annotation) sets it."""
    document = yaml.safe_load(source.read_text())
    if "apps" in document:  # dapr.yaml, the multi-app run file
        (app_id,) = [a["appID"] for a in document["apps"] if "worker" in " ".join(a["command"])]
        return str(app_id)
    return str(document["spec"]["template"]["metadata"]["annotations"]["dapr.io/app-id"])


def interval_seconds(schedule: str) -> float:
    """Seconds between a Dapr cron schedule's ticks; fails when they are not evenly spaced.

    Dapr reads 6 fields with seconds first (or the standard 5), `@every <Go duration>` and the
    @hourly-style descriptors; croniter wants the seconds last."""
    schedule = re.sub(r"^(CRON_TZ|TZ)=\S+\s+", "", schedule.strip())
    if schedule.startswith("@every "):
        parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", schedule.removeprefix("@every "))
        assert "".join(n + u for n, u in parts) == schedule.removeprefix("@every ").strip()
        return sum(float(number) * _GO_UNITS[unit] for number, unit in parts)
    fields = _DESCRIPTORS.get(schedule, schedule).split()
    if len(fields) == 5:
        fields = ["0", *fields]
    assert len(fields) == 6, f"not a Dapr cron schedule: {schedule!r}"
    ticks = croniter(" ".join([*fields[1:], fields[0]]), datetime(2025, 12, 31, 23, 50, tzinfo=UTC))
    # across an hour, day, year's end
    times: list[datetime] = [ticks.get_next(datetime) for _ in range(1_000)]
    gaps = {later - earlier for earlier, later in itertools.pairwise(times)}
    assert len(gaps) == 1, f"{schedule!r} ticks at uneven gaps: {sorted(gaps)}"
    (gap,) = gaps
    return gap / timedelta(seconds=1)


def served_by_the_worker(route: str) -> bool:
    """A POST to `route` reaches a worker binding route for a job the worker runs."""
    scope = {"type": "http", "method": "POST", "path": route}
    ticks = [r for r in routes.routes("worker") if getattr(r, "name", None) == "cron_tick"]
    matched = [r for r in ticks if r.matches(scope)[0] == Match.FULL]
    return bool(matched) and route.removeprefix("/jobs/") in WORKER_JOBS


@pytest.fixture(params=sorted(PLACES))
def place(request: pytest.FixtureRequest) -> tuple[dict[str, dict[str, Any]], str]:
    folder, app_source = PLACES[request.param]
    return cron_bindings(folder), worker_app_id(app_source)


def _binding_of(found: dict[str, dict[str, Any]], job: JobSchedule) -> dict[str, Any]:
    routed = [b for b in found.values() if b.get("route") == f"/jobs/{job.name}"]
    assert len(routed) == 1, f"{job.name}: {len(routed)} cron bindings post to /jobs/{job.name}"
    return routed[0]


def test_one_binding_per_job_and_none_else(place: tuple[dict[str, dict[str, Any]], str]) -> None:
    found, _ = place
    assert sorted(b["route"] for b in found.values()) == sorted(f"/jobs/{j.name}" for j in JOBS)
    assert sorted(found) == sorted(f"cron-{job.name}" for job in JOBS)


@pytest.mark.parametrize("job", JOBS, ids=lambda job: job.name)
def test_the_binding_fires_the_job_on_the_worker_at_its_slot(
    place: tuple[dict[str, dict[str, Any]], str], job: JobSchedule
) -> None:
    found, app_id = place
    binding = _binding_of(found, job)
    where = binding["path"].relative_to(ROOT)
    assert served_by_the_worker(binding["route"]), where
    assert binding.get("direction") == "input", f"{where}: daprd would probe OPTIONS first"
    assert binding["scopes"] == [app_id], f"{where}: only the worker ({app_id}) may fire it"
    assert interval_seconds(binding["schedule"]) == job.slot_seconds, where


class TestIntervalSeconds:
    @pytest.mark.parametrize(
        ("schedule", "seconds"),
        [
            ("*/2 * * * * *", 2),
            ("0 17 * * * *", 3600),
            ("*/5 * * * *", 300),
            ("@every 1h30m", 5400),
            ("@every 10s", 10),
            ("@hourly", 3600),
            ("CRON_TZ=Europe/Paris 0 30 4 * * *", 86400),
        ],
    )
    def test_reads_dapr_schedules(self, schedule: str, seconds: int) -> None:
        assert interval_seconds(schedule) == seconds

    def test_refuses_uneven_ticks(self) -> None:
        with pytest.raises(AssertionError, match="uneven"):
            interval_seconds("*/7 * * * * *")  # 0, 7, … 56, then 0 again 4 s later
