"""bulk: import a 1,000,000-row product CSV through the service, then export it again.

    .venv/bin/python bench/bench_bulk.py --db sqlite|postgres|both [--rows 1000000] [--runs 1]
                                         [--jsonl] [--profile DIR]

Real processes, as in production: `common-ops api` receives the upload and serves the
download, one `common-ops worker` runs the import and export handlers (the process measured).
Both share one local file store directory. Per run:

1. `POST /api/v1/operations/tasks` {taskType: import, entityType: product, fileName}, then
   PUT the CSV to the answer's uploadUrl; wait until the task is completed.
2. `POST /api/v1/operations/tasks` {taskType: export, entityType: product, params: {format:
   csv}}; wait; `GET /tasks/{id}/download`, fetch the file and count its rows with csv.reader
   (with --jsonl a JSON Lines export as well).

Rates are rows / (completedAt - startedAt), both stamped by the worker, so neither the upload
nor the worker's start-up is counted. Worker CPU seconds come from /proc/<pid>/stat over each
phase; peak RSS is VmHWM from /proc/<pid>/status, reset between phases through
/proc/<pid>/clear_refs ("5"), so the export's peak is its own. The CSV (deterministic, ~90
bytes a row, a quoted JSON column) is generated once and cached in the temp directory.
Prints one JSON line and writes bench/results/bulk.json.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import random
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from _common import (
    ROOT,
    TASK_TABLES,
    Database,
    Meter,
    Server,
    _psql,
    database,
    emit,
    fresh,
    log,
    machine,
    median,
    profiled,
    workdir,
)

TASKS = "/api/v1/operations/tasks"
HEADERS = {"X-User-ID": "bench"}
RESULT = ROOT / "bench" / "results" / "bulk.json"
AIMS = {"importRowsPerSecond": 100_000, "exportRowsPerSecond": 200_000, "peakRssMB": 150}

CATEGORIES = ("shoes", "apparel", "outdoor", "accessories", "electronics", "home", "toys")
ADJECTIVES = ("Trail", "Road", "Classic", "Urban", "Alpine", "Coastal", "Compact", "Premium")
NOUNS = ("running shoe", "rain jacket", "backpack", "water bottle", "headlamp", "tent", "scarf")
COLOURS = ("red", "blue", "black", "white", "green", "grey")


# -- the input file ---------------------------------------------------------------------------
def products_csv(rows: int) -> Path:
    """A deterministic product CSV of `rows` rows, cached across runs in the temp directory."""
    cache = Path(tempfile.gettempdir()) / "common-ops-bench"
    cache.mkdir(exist_ok=True)
    path = cache / f"products-{rows}.csv"
    if path.exists():
        return path
    log(f"generating {rows} product rows in {path}")
    rng = random.Random(20261123)
    partial = path.with_suffix(".partial")
    with partial.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(
            ["sku", "name", "description", "price", "currency", "stock", "category", "attributes"]
        )
        for i in range(rows):
            noun = NOUNS[rng.randrange(len(NOUNS))]
            attributes = (
                json.dumps({"color": COLOURS[i % 6], "size": 36 + i % 12}, separators=(",", ":"))
                if i % 2
                else ""
            )
            writer.writerow(
                [
                    f"SKU-{i:08d}",
                    f"{ADJECTIVES[rng.randrange(len(ADJECTIVES))]} {noun} {i % 977}",
                    f"Durable {noun}, model {i % 311}, fits most." if i % 3 == 0 else "",
                    f"{rng.randrange(1, 500_000) / 100:.2f}",
                    ("EUR", "USD", "GBP")[i % 3],
                    rng.randrange(0, 1000),
                    CATEGORIES[i % len(CATEGORIES)],
                    attributes,
                ]
            )
    partial.rename(path)
    return path


# -- processes --------------------------------------------------------------------------------
def peak_rss_mb(pid: int) -> float:
    """VmHWM of a process: its peak resident set since start or the last reset."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmHWM for {pid}")


def reset_peak(pid: int) -> None:
    """Start a new VmHWM period (Linux >= 4.0); the measurement stays per phase."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def fresh_bulk(db: Database) -> None:
    """Empty the task and bulk tables between runs on the same database."""
    fresh(db, "store_records, import_checkpoints, import_row_errors, files, " + TASK_TABLES)


# -- one phase --------------------------------------------------------------------------------
def wait_done(client: httpx.Client, task_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task: dict[str, Any] = client.get(f"{TASKS}/{task_id}", headers=HEADERS).json()
        if task["status"] in ("completed", "failed", "cancelled", "dead_letter"):
            return task
        time.sleep(0.25)
    raise RuntimeError(f"task {task_id} not done after {timeout}s")


def _seconds(task: dict[str, Any]) -> float:
    started = datetime.fromisoformat(task["startedAt"].replace("Z", "+00:00"))
    completed = datetime.fromisoformat(task["completedAt"].replace("Z", "+00:00"))
    return (completed - started).total_seconds()


def _absolute(client: httpx.Client, url: str) -> str:
    return url if url.startswith("http") else str(client.base_url.join(url))


def import_file(
    client: httpx.Client, path: Path, timeout: float, params: dict[str, Any]
) -> dict[str, Any]:
    body = {"taskType": "import", "entityType": "product", "fileName": path.name, "params": params}
    created = client.post(TASKS, json=body, headers=HEADERS)
    created.raise_for_status()
    answer = created.json()
    with path.open("rb") as upload:
        put = client.put(
            _absolute(client, answer["uploadUrl"]),
            content=upload,
            headers={**(answer.get("uploadHeaders") or {}), "Content-Type": "text/csv"},
        )
    put.raise_for_status()
    return wait_done(client, answer["id"], timeout)


def export_file(
    client: httpx.Client, fmt: str, work: Path, timeout: float
) -> tuple[dict[str, Any], int, int]:
    """The finished export task, its row count as read back, and its size in bytes."""
    body = {"taskType": "export", "entityType": "product", "params": {"format": fmt}}
    created = client.post(TASKS, json=body, headers=HEADERS)
    created.raise_for_status()
    task = wait_done(client, created.json()["id"], timeout)
    if task["status"] != "completed":
        return task, -1, 0
    link = client.get(f"{TASKS}/{task['id']}/download", headers=HEADERS).json()
    target = work / f"export.{fmt}"
    with client.stream("GET", _absolute(client, link["downloadUrl"])) as response:
        response.raise_for_status()
        with target.open("wb") as out:
            for chunk in response.iter_bytes(1 << 20):
                out.write(chunk)
    size = target.stat().st_size
    with target.open(newline="", encoding="utf-8") as text:
        if fmt == "csv":
            count = sum(1 for _ in csv.reader(text)) - 1  # the header
        else:
            count = sum(1 for line in text if line.strip())
    target.unlink()
    return task, count, size


def measure(
    name: str, worker: Server, api: Server, out: Path | None, action: Any
) -> tuple[Any, dict[str, Any]]:
    """Run `action` with the worker profiled and metered; its result and the figures."""
    reset_peak(worker.pid)
    reset_peak(api.pid)
    with profiled(worker.pid, out), Meter({"worker": worker.pid, "api": api.pid}) as meter:
        result = action()
    figures = {
        **meter.result,
        "workerPeakRssMB": peak_rss_mb(worker.pid),
        "apiPeakRssMB": peak_rss_mb(api.pid),
    }
    log(f"{name}: {figures}")
    return result, figures


def one_run(db: Database, work: Path, args: argparse.Namespace, run: int) -> dict[str, Any]:
    fresh_bulk(db)
    path = products_csv(args.rows)
    files = {"OPS_FILES_DIR": str(work / "files")}
    extra = dict(item.split("=", 1) for item in args.env)
    api = Server("api", db, work, env={**files, **extra})
    worker = Server(
        "worker", db, work, env={**files, "OPS_WORKER_ID": f"bench-bulk-{run}", **extra}
    )
    result: dict[str, Any] = {"rows": args.rows, "fileBytes": path.stat().st_size}
    with api, worker, httpx.Client(base_url=f"http://127.0.0.1:{api.port}", timeout=600) as client:
        prof = args.profile
        params = {"batchSize": args.batch_size} if args.batch_size else {}

        def out(phase: str) -> Path | None:
            return prof / f"bulk-{phase}-{db.kind}-{run}.txt" if prof else None

        task, figures = measure(
            "import",
            worker,
            api,
            out("import"),
            lambda: import_file(client, path, args.timeout, params),
        )
        seconds = _seconds(task) if task["status"] == "completed" else float("nan")
        outcome = task.get("result") or {}
        result["import"] = {
            "status": task["status"],
            "seconds": round(seconds, 3),
            "rowsPerSecond": round(args.rows / seconds),
            "workerCpuSecondsPer1000Rows": round(1000 * figures["workerCpuSeconds"] / args.rows, 4),
            "created": outcome.get("created"),
            "failed": task.get("failedItems"),
            "succeeded": task.get("succeededItems"),
            **figures,
        }
        if args.vacuum_before_export and db.kind == "postgres":
            began = time.perf_counter()
            _psql(db.info["port"], "VACUUM ANALYZE store_records", db="bench")
            result["vacuumSeconds"] = round(time.perf_counter() - began, 3)
            log(f"VACUUM ANALYZE store_records: {result['vacuumSeconds']} s")
        formats = ["csv", "jsonl"] if args.jsonl else ["csv"]
        for fmt in formats:
            (task, count, size), figures = measure(
                f"export {fmt}",
                worker,
                api,
                out(f"export-{fmt}"),
                lambda fmt=fmt: export_file(client, fmt, work, args.timeout),
            )
            seconds = _seconds(task) if task["status"] == "completed" else float("nan")
            result[f"export_{fmt}"] = {
                "status": task["status"],
                "seconds": round(seconds, 3),
                "rowsPerSecond": round(args.rows / seconds),
                "workerCpuSecondsPer1000Rows": round(
                    1000 * figures["workerCpuSeconds"] / args.rows, 4
                ),
                "rowsWritten": (task.get("result") or {}).get("rowsWritten"),
                "rowsReadBack": count,
                "fileBytes": size,
                **figures,
            }
        result["api"] = api.command
        result["worker"] = worker.command
    result["checks"] = {
        "importCreated": result["import"]["created"] == args.rows,
        "importFailed0": result["import"]["failed"] == 0,
        **{
            f"export_{fmt}Rows": result[f"export_{fmt}"]["rowsReadBack"] == args.rows
            for fmt in formats
        },
    }
    result["checks"]["ok"] = all(result["checks"].values())
    log(f"run {run} on {db.kind}: {json.dumps(result['checks'])}")
    return result


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the runs of the figures the README quotes."""

    def med(phase: str, key: str) -> float | None:
        values = [r[phase][key] for r in runs if phase in r]
        return median(values) if values else None

    out: dict[str, Any] = {}
    for phase in ("import", "export_csv", "export_jsonl"):
        if phase in runs[0]:
            out[phase] = {
                key: med(phase, key)
                for key in (
                    "rowsPerSecond",
                    "seconds",
                    "workerCpuSeconds",
                    "workerCpuSecondsPer1000Rows",
                    "workerPeakRssMB",
                    "apiPeakRssMB",
                    "machineBusyCores",
                )
            }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--jsonl", action="store_true", help="also export JSON Lines")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--profile", type=Path, help="write py-spy profiles of the worker here")
    parser.add_argument("--batch-size", type=int, help="import batchSize (default: the service's)")
    parser.add_argument(
        "--env", action="append", default=[], help="KEY=VALUE for both servers (repeatable)"
    )
    parser.add_argument("--no-save", action="store_true", help="do not write results/bulk.json")
    parser.add_argument(
        "--vacuum-before-export",
        action="store_true",
        help="PostgreSQL: VACUUM ANALYZE the imported rows before the exports (hint bits set)",
    )
    args = parser.parse_args()

    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    databases: dict[str, Any] = {}
    for kind in kinds:
        with workdir("bench-bulk-") as work, database(kind, work) as db:
            runs = [one_run(db, work, args, run) for run in range(args.runs)]
        databases[kind] = {"dbInfo": db.info, "median": summary(runs), "runs": runs}
    result = {
        "bench": "bulk",
        "entity": "product",
        "rows": args.rows,
        "machine": machine(),
        "aims": AIMS,
        "databases": databases,
    }
    emit(result)
    if not args.no_save:
        RESULT.parent.mkdir(parents=True, exist_ok=True)
        RESULT.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
