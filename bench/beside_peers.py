"""Common-Operations beside the peer task queues, in one run, as ratios (issue 10, "The speed").

    bench/beside_peers.sh [--runs N] [--peers "w4 celery pgqueuer"] [--pg peers|own]
        [--dapr] [--batch-create] [--memory [N]] [--profile DIR] [--ours w1,w2,w3]
        [--peers-batch ID] [--reuse-services]

1. Runs ../shared/peers/run_all.sh (RUNS=--runs, ONLY=--peers, a batch id of its own) and
   reads back the records it appended to $RESULTS (default $PEERS_WORK/results.jsonl). The
   peers' size variables (W1_N, W1_WARMUP, W2_N, W3_N, W3_SPACING_MS, W4_SECONDS, STEP_TIMEOUT,
   PEERS_WORK, PEERS_PG_PORT, PEERS_REDIS_PORT, RESULTS) pass through, and our workloads use
   the same sizes, so a smoke run is small on both sides.
2. Then, in the same run, our own workloads, --runs times each (medians), on PostgreSQL with
   fsync on (by default the peers' own cluster on 127.0.0.1:5440, kept for us with
   KEEP_SERVICES=1 and stopped at the end; --pg own starts a cluster of ours instead):
   W1  POST /api/v1/operations/tasks {"taskType":"noop"} through a real `common-ops api`:
       W1_WARMUP warm-ups, then W1_N creates from 1 client (p50/p95/p99, tasks/s), then
       16 clients (W1_WARMUP warm-ups each, W1_N creates in all: tasks/s, p50/p99), with the
       CPU of the API process and of PostgreSQL per request;
   W2  W2_N queued noop tasks drained by one `common-ops worker`, timed as the peers time it
       (spawn -> all completed, start-up, steady rate; 50 ms polls), worker and PostgreSQL CPU
       per task over the steady window; then every task must have its attempt, 3 events and
       3 outbox rows, all published;
   W3  the embedded mode (`common-ops dev`): ready + warm-up, 1 s idle, W3_N creates on an
       open-loop W3_SPACING_MS schedule; send -> startedAt (stamped at the claim, just before
       the handler starts) p50/p95/p99, and send -> completedAt.
   Optional: --dapr (bench_dapr.py's Dapr shape on the same cluster: latency through two
   daprd, end-to-end throughput and backlog with 1 then 2 worker replicas), --batch-create
   (POST /tasks:batch; "not available" when it answers 404/405), --memory N (an N-task drain,
   worker RSS over time), --profile DIR (extra, unreported runs under py-spy, summarised).
3. Prints, and writes to bench/results/beside-peers-<batch>.json and .md, the ratios against
   the aims of issue 10, CPU per unit of every process of ours, and the peers' figures used.

Progress goes to stderr (the peers' output included); the Markdown report to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bench_create
import bench_drain
import bench_latency
import profile_summary
import uvloop
from _common import (
    ROOT,
    VENV_BIN,
    Cluster,
    Database,
    Meter,
    Server,
    _system_jiffies,
    checkpoint,
    children,
    cpu_seconds,
    database,
    fresh,
    log,
    machine,
    percentile,
    postgres_cpu,
    profiled,
    workdir,
)

# -- sizes: the peers' variables and defaults (../shared/peers/common.py) -----------------------
W1_N = int(os.environ.get("W1_N", "5000"))
W1_WARMUP = int(os.environ.get("W1_WARMUP", "20"))
W1_CLIENTS = 16
W2_N = int(os.environ.get("W2_N", "10000"))
W3_N = int(os.environ.get("W3_N", "300"))
W3_SPACING_MS = float(os.environ.get("W3_SPACING_MS", "20"))
PEERS_WORK = Path(os.environ.get("PEERS_WORK", "/tmp/peers"))
PEERS_PG_PORT = int(os.environ.get("PEERS_PG_PORT", "5440"))
PEERS_REDIS_PORT = int(os.environ.get("PEERS_REDIS_PORT", "6390"))
RESULTS = Path(os.environ.get("RESULTS", str(PEERS_WORK / "results.jsonl")))
OUT_DIR = ROOT / "bench" / "results"

#: issue 10's aims
AIM_W1_16_TPS, RESOLVE_W1_16_TPS = 2000.0, 1200.0
AIM_BATCH_TPS = 50_000.0
#: a drain's RSS is "flat" when it grows less than this between 10 % and 100 % of the drain
FLAT_MIB = 10.0
TIMES, DASH = "\u00d7", "\u2013"  # the multiplication sign and the en dash of the report


# -- the peers' run ------------------------------------------------------------------------------
def peers_dir(explicit: str | None) -> Path:
    """../shared/peers from the project root (a worktree may sit one level deeper)."""
    candidates = [Path(explicit)] if explicit else []
    candidates += [ROOT.parent / "shared" / "peers", ROOT.parent.parent / "shared" / "peers"]
    for path in candidates:
        if (path / "run_all.sh").exists():
            return path.resolve()
    raise SystemExit(f"no peers harness (run_all.sh) in {[str(c) for c in candidates]}")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def peers_services_cpu() -> float:
    """CPU seconds so far of the peers' PostgreSQL cluster and Redis (daemons: not our
    children, so not in RUSAGE_CHILDREN)."""
    total = postgres_cpu(PEERS_WORK / "pg")()
    with contextlib.suppress(OSError, ValueError):
        total += cpu_seconds(int((PEERS_WORK / "redis.pid").read_text().split()[0]))
    return total


def run_peers(pdir: Path, batch: str, runs: int, only: str, keep: bool) -> dict[str, Any]:
    """run_all.sh under our batch id; its output goes to stderr and to a log file."""
    env = dict(os.environ)
    env.update(
        RUNS=str(runs),
        ONLY=only,
        BATCH=batch,
        PEERS_WORK=str(PEERS_WORK),
        RESULTS=str(RESULTS),
        KEEP_SERVICES="1" if keep else "0",
    )
    log_path = OUT_DIR / f"beside-peers-{batch}.peers.log"
    log(f"peers: {pdir}/run_all.sh RUNS={runs} ONLY='{only}' BATCH={batch} (log {log_path})")
    busy0, total0 = _system_jiffies()
    svc0 = peers_services_cpu()
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with log_path.open("w") as out:
        proc = subprocess.Popen(
            [str(pdir / "run_all.sh")],
            cwd=pdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                out.write(line)
                sys.stderr.write("  | " + line)
            rc = proc.wait()
        except BaseException:
            stop_peers(proc)
            raise
    wall = time.perf_counter() - t0
    busy1, total1 = _system_jiffies()
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    kids = (kids1.ru_utime + kids1.ru_stime) - (kids0.ru_utime + kids0.ru_stime)
    # PostgreSQL/Redis may have been stopped by run_all.sh at its end (then svc reads 0)
    svc = max(0.0, peers_services_cpu() - svc0)
    busy = (os.cpu_count() or 1) * (busy1 - busy0) / max(1, total1 - total0)
    return {
        "command": f"RUNS={runs} ONLY='{only}' BATCH={batch} KEEP_SERVICES={int(keep)} "
        f"{pdir}/run_all.sh",
        "exitCode": rc,
        "seconds": round(wall, 1),
        "machineBusyCores": round(busy, 2),
        # what the peers' processes (clients, workers, pgbench; their PostgreSQL and Redis when
        # still running at the end) used; the rest of the busy cores is other jobs
        "peersCores": round((kids + svc) / wall, 2),
        "otherCores": round(max(0.0, busy - (kids + svc) / wall), 2),
        "log": str(log_path.relative_to(ROOT)),
    }


def stop_peers(proc: subprocess.Popen[str]) -> None:
    """Interrupted: SIGTERM run_all.sh and its direct children (the current step's `timeout`,
    which is in a process group of its own and passes the signal to the peer's client, whose
    `finally` stops the worker it spawned), by pid; SIGKILL what is left after 60 s."""
    targets = [proc.pid, *children(proc.pid)]
    for pid in targets:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        for pid in targets:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=10)


def read_batch(batch: str) -> list[dict[str, Any]]:
    if not RESULTS.exists():
        raise SystemExit(f"no peers results at {RESULTS}")
    out = []
    for line in RESULTS.read_text().splitlines():
        if line.strip().startswith("{"):
            rec = json.loads(line)
            if str(rec.get("run", "")).split("/")[0] == batch:
                out.append(rec)
    return out


NUMERIC = (
    "submit_tps",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "bulk_enqueue_s",
    "drain_s",
    "drain_tps",
    "steady_tps",
    "startup_s",
    "tps",
    "latency_avg_ms",
    "received",
)


def peer_medians(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """'peer/variant/workload' -> {metric: median over the ok runs, 'runs': n, 'failed': n}."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rec in records:
        groups[f"{rec.get('peer')}/{rec.get('variant', '')}/{rec.get('workload')}"].append(rec)
    out: dict[str, dict[str, Any]] = {}
    for key, recs in groups.items():
        ok = [r for r in recs if r.get("ok")]
        row: dict[str, Any] = {"runs": len(ok), "failed": len(recs) - len(ok)}
        for metric in NUMERIC:
            values = [r[metric] for r in ok if isinstance(r.get(metric), int | float)]
            if values:
                row[metric] = statistics.median(values)
                row[f"{metric}PerRun"] = values
        if len(ok) < len(recs):
            row["errors"] = [r.get("error") for r in recs if not r.get("ok")]
        out[key] = row
    return out


def size_mismatch(records: list[dict[str, Any]]) -> list[str]:
    """Workloads whose peer records ran another size than ours will (not one comparison)."""
    ours = {"W1": W1_N, "W2": W2_N, "W3": W3_N}
    out = set()
    for rec in records:
        want = ours.get(str(rec.get("workload")))
        if want is not None and rec.get("n") not in (None, want):
            out.add(f"{rec['workload']}: peers n={rec['n']}, ours {want}")
    return sorted(out)


# -- our workloads -------------------------------------------------------------------------------
def step(db: Database) -> None:
    """What run_all.sh does before each peer step: CHECKPOINT, 1 s pause. Plus empty tables."""
    fresh(db)
    checkpoint(db)
    time.sleep(1.0)


def pg_groups(db: Database) -> dict[str, Callable[[], float]]:
    return {"postgres": postgres_cpu(Path(db.info["dataDir"]))}


def count_tasks(db: Database) -> int:
    counter = bench_drain.Counter(db)
    try:
        return counter._one("SELECT count(*) FROM tasks")
    finally:
        counter.close()


def w1(
    db: Database, work: Path, profile: Path | None = None, *, processes: int = 1
) -> dict[str, Any]:
    step(db)
    per_client = max(1, W1_N // W1_CLIENTS)
    result = _w1_one_process(db, work, per_client, profile)
    if processes > 1:  # the 16 clients again, on `api --workers N` (one port, N processes)
        with Server("api", db, work, args=["--workers", str(processes)]) as api:
            uvloop.run(bench_create.load(api.port, W1_CLIENTS, W1_WARMUP))
            result["clients16Processes"] = {
                "processes": processes,
                **bench_create.measured(api, W1_CLIENTS, per_client, None, pg_groups(db)),
            }
    return result


def _w1_one_process(
    db: Database, work: Path, per_client: int, profile: Path | None
) -> dict[str, Any]:
    with Server("api", db, work) as api:
        uvloop.run(bench_create.load(api.port, 1, W1_WARMUP))
        one = bench_create.measured(
            api, 1, W1_N, profile and profile / "w1-api-1client.txt", pg_groups(db)
        )
        uvloop.run(bench_create.load(api.port, W1_CLIENTS, W1_WARMUP))
        many = bench_create.measured(
            api,
            W1_CLIENTS,
            per_client,
            profile and profile / "w1-api-16clients.txt",
            pg_groups(db),
        )
        command = api.command
    rows = count_tasks(db)
    expected = W1_WARMUP + W1_N + W1_CLIENTS * (W1_WARMUP + per_client)
    if rows != expected:
        raise RuntimeError(f"W1: {rows} task rows, expected {expected}")
    return {"oneClient": one, "clients16": many, "server": command, "taskRows": rows}


def w2(
    db: Database,
    work: Path,
    count: int,
    run: int,
    profile: Path | None = None,
    *,
    replicas: int = 1,
) -> dict[str, Any]:
    """The drain with one worker process; with `replicas` > 1 it is also drained again (filled
    anew) by that many worker processes together, as `replicas` of the result."""
    result = _w2_once(db, work, count, run, profile, workers=1)
    if replicas > 1:
        result["replicas"] = _w2_once(db, work, count, run, None, workers=replicas)
    return result


def _w2_once(
    db: Database, work: Path, count: int, run: int, profile: Path | None, *, workers: int
) -> dict[str, Any]:
    step(db)
    filled = asyncio.run(bench_drain.fill(db.url, count, published=True))
    log(f"W2: queued {count} tasks in {filled:.1f}s ({workers} worker process(es))")
    drained = bench_drain.drain(
        db,
        work,
        count,
        env={"OPS_WORKER_ID": f"bench-worker-{run}"},
        timeout=max(600.0, count / 20),
        profile=profile and profile / "w2-worker.txt",
        workers=workers,
    )
    state = asyncio.run(bench_drain.progress(db.url))
    checks = asyncio.run(bench_drain.verify(db.url, count))
    if not checks["ok"]:
        raise RuntimeError(f"W2 drain broke a guarantee: {checks}")
    stamped = (state["last"] - state["first"]).total_seconds()
    return {
        **drained,
        "fillSeconds": round(filled, 2),
        "fillMethod": "bench_drain.fill: one create through the use case, copies of its rows "
        "inserted 2,500 per transaction, `created` outbox rows marked published",
        "stampedTasksPerSecond": round(count / stamped, 1),
        "checks": checks,
    }


def w3(db: Database, work: Path, profile: Path | None = None) -> dict[str, Any]:
    step(db)
    gap = W3_SPACING_MS / 1000
    t_spawn = time.perf_counter()
    with Server("dev", db, work) as dev:
        counter = bench_drain.Counter(db)
        try:
            warm = 20
            uvloop.run(bench_latency.drive(dev.port, warm, gap))
            wait_all_completed(counter, warm, 60)
            ready = time.perf_counter() - t_spawn
            time.sleep(1.0)
            groups: dict[str, int | Callable[[], float]] = {"dev": dev.pid, **pg_groups(db)}
            with (
                profiled(dev.pid, profile and profile / "w3-dev.txt"),
                Meter(groups) as meter,
            ):
                sent = uvloop.run(bench_latency.drive(dev.port, W3_N, gap))
                wait_all_completed(counter, warm + W3_N, 60)
        finally:
            counter.close()
        rows = uvloop.run(bench_latency.collect(dev.port, sent))
        command = dev.command
    start = [r["start"] for r in rows]
    complete = [r["complete"] for r in rows]
    n = len(rows)
    return {
        "n": W3_N,
        "received": n,
        "spacing_ms": W3_SPACING_MS,
        "readySeconds": round(ready, 3),
        "sendToStartedAt": latency(start),
        "sendToCompletedAt": latency(complete),
        **meter.result,
        "devCpuMsPerTask": round(1000 * meter.result["devCpuSeconds"] / n, 3),
        "postgresCpuMsPerTask": round(1000 * meter.result["postgresCpuSeconds"] / n, 3),
        "server": command,
    }


def wait_all_completed(counter: bench_drain.Counter, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while counter.completed() < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{counter.completed()}/{count} tasks completed after {timeout}s")
        time.sleep(0.02)


def latency(values: list[float]) -> dict[str, float]:
    return {f"p{q}_ms": round(1000 * percentile(values, q), 3) for q in (50, 95, 99)} | {
        "max_ms": round(1000 * max(values), 3)
    }


def batch_create(db: Database, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    step(db)
    with Server("api", db, work) as api:
        status, body = uvloop.run(bench_create.batch_probe(api.port))
        if status in (404, 405):
            return {
                "available": False,
                "reason": f"POST {bench_create.BATCH_PATH} answered {status}: not available "
                "(not built yet)",
            }
        if not 200 <= status < 300:
            return {"available": True, "error": f"probe answered {status}: {body[:300]!r}"}
        batches = max(1, args.batch_tasks // args.batch_size)
        groups: dict[str, int | Callable[[], float]] = {"api": api.pid, **pg_groups(db)}
        with Meter(groups) as meter:
            result = uvloop.run(
                bench_create.batch_load(api.port, args.batch_clients, batches, args.batch_size)
            )
    rows = count_tasks(db)
    tasks = batches * args.batch_size
    result.update(meter.result, available=True, taskRows=rows, expectedRows=tasks + 1)
    for name in groups:
        result[f"{name}CpuMsPerTask"] = round(1000 * meter.result[f"{name}CpuSeconds"] / tasks, 4)
    return result


def memory(db: Database, work: Path, count: int) -> dict[str, Any]:
    step(db)
    filled = asyncio.run(bench_drain.fill(db.url, count, published=True))
    log(f"memory: queued {count} tasks in {filled:.1f}s")
    drained = bench_drain.drain(
        db, work, count, env={"OPS_WORKER_ID": "bench-memory"}, timeout=max(1800.0, count / 20)
    )
    checks = asyncio.run(bench_drain.verify(db.url, count))
    samples = drained["workerRssMiB"]["samples"]  # [seconds, completed, MiB]
    at10 = next((mib for _, done, mib in samples if done >= count / 10), None)
    end = drained["workerRssMiB"]["end"]
    growth = round(end - at10, 1) if at10 is not None and end is not None else None
    return {
        "tasks": count,
        "fillSeconds": round(filled, 1),
        "drain_tps": drained["drain_tps"],
        "steady_tps": drained["steady_tps"],
        "rssMiB": {
            "atFirstCompletion": drained["workerRssMiB"]["atFirstCompletion"],
            "at10Percent": at10,
            "end": end,
            "peak": drained["workerRssMiB"]["peak"],
            "growthFrom10PercentToEnd": growth,
        },
        "flat": growth is not None and growth < FLAT_MIB,
        "flatMeans": f"RSS grows less than {FLAT_MIB:g} MiB between 10 % and 100 % of the drain",
        "samples": samples,
        "checks": checks,
        "workerCpuMsPerTask": drained["workerCpuMsPerTask"],
    }


def dapr(db: Database, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    import bench_dapr

    pg = bench_dapr.Postgres(work, port=db.info["port"], data_dir=Path(db.info["dataDir"]))
    dargs = argparse.Namespace(
        runs=args.runs,
        tasks=args.dapr_tasks,
        clients=W1_CLIENTS,
        latency_tasks=W3_N,
        gap_ms=W3_SPACING_MS,
        kinds={"latency", "throughput", "backlog"},
        profile=args.profile and args.profile / "dapr",
    )
    checkpoint(db)
    result = bench_dapr.run_dapr(pg, work, dargs)
    return {"daprd": os.environ.get("OPS_DAPRD", "(scripts/build-dapr.sh)"), **result}


def profile_runs(db: Database, work: Path, out: Path) -> dict[str, str]:
    """One extra, unreported run of W1, W2, W3 with py-spy on the server process; summaries."""
    out.mkdir(parents=True, exist_ok=True)
    log(f"profiling (extra runs, not counted) into {out}")
    w1(db, work, out)
    w2(db, work, W2_N, 99, out)
    w3(db, work, out)
    match = ["create", "claim", "finish", "record", "relay", "drain", "execute", "commit"]
    written = {}
    for raw in sorted(out.rglob("*.txt")):
        if raw.name.endswith(".summary.txt"):
            continue
        target = raw.with_suffix(".summary.txt")
        target.write_text(profile_summary.summary(raw, 25, match) + "\n")
        written[str(raw.relative_to(out).with_suffix(""))] = str(target)
    return written


def ensure_py_spy() -> None:
    if shutil.which("py-spy", path=str(VENV_BIN)) or shutil.which("py-spy"):
        return
    log("installing py-spy into .venv (for --profile)")
    subprocess.run([str(VENV_BIN / "pip"), "install", "-q", "py-spy"], check=True)


def median_of(runs: list[dict[str, Any]], *path: str) -> float | None:
    values = []
    for run in runs:
        value: Any = run
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, int | float):
            values.append(value)
    return round(float(statistics.median(values)), 3) if values else None


def ours_medians(ours: dict[str, Any]) -> dict[str, Any]:
    w1s, w2s, w3s = ours.get("w1", []), ours.get("w2", []), ours.get("w3", [])
    m: dict[str, Any] = {}
    for key in (
        "tasksPerSecond",
        "p50ms",
        "p99ms",
        "apiCpuMsPerRequest",
        "postgresCpuMsPerRequest",
    ):
        m[f"w1One.{key}"] = median_of(w1s, "oneClient", key)
        m[f"w1Many.{key}"] = median_of(w1s, "clients16", key)
        m[f"w1Processes.{key}"] = median_of(w1s, "clients16Processes", key)
    for key in ("drain_tps", "steady_tps", "startup_s", "drain_s", "workerCpuMsPerTask"):
        m[f"w2.{key}"] = median_of(w2s, key)
    m["w2.postgresCpuMsPerTask"] = median_of(w2s, "postgresCpuMsPerTask")
    for key in ("drain_tps", "steady_tps", "workers", "workerCpuMsPerTask"):
        m[f"w2Replicas.{key}"] = median_of(w2s, "replicas", key)
    m["w2.stampedTasksPerSecond"] = median_of(w2s, "stampedTasksPerSecond")
    for key in ("p50_ms", "p95_ms", "p99_ms"):
        m[f"w3.start.{key}"] = median_of(w3s, "sendToStartedAt", key)
        m[f"w3.complete.{key}"] = median_of(w3s, "sendToCompletedAt", key)
    m["w3.devCpuMsPerTask"] = median_of(w3s, "devCpuMsPerTask")
    m["w3.postgresCpuMsPerTask"] = median_of(w3s, "postgresCpuMsPerTask")
    return m


# -- ratios ----------------------------------------------------------------------------------------
def fmt(v: float | None, unit: str = "") -> str:
    if v is None:
        return "—"
    if abs(v) >= 100:
        text = f"{v:,.0f}"
    elif abs(v) >= 10:
        text = f"{v:.1f}"
    else:
        text = f"{v:.3g}"
    return text + unit


def _w2_variants(m: dict[str, Any]) -> list[tuple[str, str, str]]:
    """W2's rows: one worker process, and the replicas when they ran (key, label, note)."""
    variants = [
        (
            "w2",
            "",
            "ours also writes the attempt, 3 events, 3 outbox rows per task and publishes them",
        )
    ]
    if m.get("w2Replicas.drain_tps") is not None:
        workers = f" with {m['w2Replicas.workers']:g} worker processes (replicas)"
        variants.append(("w2Replicas", workers, "pgqueuer: one process"))
    return variants


def ratio_rows(
    peers: dict[str, dict[str, Any]], m: dict[str, Any], ours: dict[str, Any]
) -> list[dict[str, Any]]:
    """[{what, ours, peer, ratio, aim, resolve, verdict}] for the aims of issue 10, then context
    rows (aim '—'). Ratio = ours / peer (or / the mark); 'higher' or 'lower' is better."""

    def peer(key: str, metric: str) -> float | None:
        value = peers.get(key, {}).get(metric)
        return float(value) if isinstance(value, int | float) else None

    rows: list[dict[str, Any]] = []

    def row(
        what: str,
        ours_v: float | None,
        ours_unit: str,
        peer_name: str,
        peer_v: float | None,
        *,
        better: str,
        aim: float | None = None,
        resolve: float | None = None,
        note: str = "",
        strict: bool = False,
    ) -> None:
        r = ours_v / peer_v if ours_v is not None and peer_v else None
        verdict = "—"
        if r is not None and aim is not None:
            ok = (r > aim if strict else r >= aim) if better == "higher" else r <= aim
            half = resolve is not None and (r >= resolve if better == "higher" else r <= resolve)
            verdict = "met" if ok else ("resolves (aim missed)" if half else "missed")
        sign = (">" if strict else "≥") if better == "higher" else "≤"
        rows.append(
            {
                "what": what,
                "ours": fmt(ours_v, ours_unit),
                "peer": f"{peer_name} {fmt(peer_v, ours_unit)}" if peer_name else "—",
                "ratio": round(r, 3) if r is not None else None,
                "aim": f"{sign} {aim:g}{TIMES}" if aim is not None else "—",
                "resolve": f"{sign} {resolve:g}{TIMES}" if resolve is not None else "—",
                "verdict": verdict,
                "note": note,
            }
        )

    cel, pgq = "celery/prefork", "pgqueuer/default"
    for key, served, note in _w2_variants(m):
        for metric, what in (
            ("drain_tps", f"W2 drain of {W2_N:,} queued noop{served}, spawn → all completed"),
            ("steady_tps", f"W2 drain{served}, steady rate (start-up excluded)"),
        ):
            row(
                f"{what} (tasks/s)",
                m.get(f"{key}.{metric}"),
                "/s",
                "pgqueuer",
                peer(f"{pgq}/W2", metric),
                better="higher",
                aim=1.0,
                resolve=0.75,
                note=note if metric == "drain_tps" else "",
            )
    row(
        "W1 create, 1 client, p99 (ms)",
        m.get("w1One.p99ms"),
        " ms",
        "Celery delay()",
        peer(f"{cel}/W1", "p99_ms"),
        better="lower",
        aim=2.0,
        note="ours: REST call, committed with fsync; Celery: library call, Redis in memory",
    )
    for key, served in (("w1Many", ""), ("w1Processes", ", `api --workers N`")):
        if key == "w1Many" or m.get(f"{key}.tasksPerSecond") is not None:
            row(
                f"W1 create, 16 clients{served} (tasks/s) vs the 2,000/s mark",
                m.get(f"{key}.tasksPerSecond"),
                "/s",
                "mark",
                AIM_W1_16_TPS,
                better="higher",
                aim=1.0,
                resolve=RESOLVE_W1_16_TPS / AIM_W1_16_TPS,
            )
    bc = ours.get("batchCreate")
    if bc is not None:
        if "tasksPerSecond" in bc:
            row(
                "batch create POST /tasks:batch (tasks/s) vs 50,000/s",
                bc["tasksPerSecond"],
                "/s",
                "mark",
                AIM_BATCH_TPS,
                better="higher",
                aim=1.0,
            )
        else:
            rows.append(
                {
                    "what": "batch create POST /tasks:batch (tasks/s) vs 50,000/s",
                    "ours": "not available",
                    "peer": "mark 50,000/s",
                    "ratio": None,
                    "aim": f"≥ 1{TIMES}",
                    "resolve": "—",
                    "verdict": "failed" if "error" in bc else "not available",
                    "note": bc.get("reason") or bc.get("error", ""),
                }
            )
    row(
        "W3 enqueue → handler start, embedded, p99 (ms)",
        m.get("w3.start.p99_ms"),
        " ms",
        "Celery",
        peer(f"{cel}/W3", "p99_ms"),
        better="lower",
        aim=1.0,
        note="ours: send → startedAt (stamped at the claim, just before the handler)",
    )
    d = ours.get("dapr")
    if d is not None and "error" not in d:
        one, two = d.get("oneWorker", {}), d.get("twoWorkers", {})
        row(
            "W3 through two daprd (API + worker sidecars), p99 (ms)",
            one.get("latency", {}).get("startP99ms"),
            " ms",
            "Celery",
            peer(f"{cel}/W3", "p99_ms"),
            better="lower",
            aim=2.0,
        )
        tp1 = one.get("throughput", {}).get("tasksPerSecond")
        tp2 = two.get("throughput", {}).get("tasksPerSecond")
        row(
            "real Dapr end to end, 1 worker (16 clients create → all completed, tasks/s)",
            tp1,
            "/s",
            "Celery drain",
            peer(f"{cel}/W2", "drain_tps"),
            better="higher",
            aim=1.0,
        )
        row(
            "real Dapr end to end, 2 worker replicas vs 1",
            tp2,
            "/s",
            "1 worker",
            tp1,
            better="higher",
            aim=1.0,
            strict=True,
            note="a second replica must raise throughput",
        )
        row(
            "real Dapr backlog drain, 1 worker (tasks/s)",
            one.get("backlog", {}).get("tasksPerSecond"),
            "/s",
            "Celery drain",
            peer(f"{cel}/W2", "drain_tps"),
            better="higher",
        )
        row(
            "real Dapr backlog drain, 2 workers (tasks/s)",
            two.get("backlog", {}).get("tasksPerSecond"),
            "/s",
            "Celery drain",
            peer(f"{cel}/W2", "drain_tps"),
            better="higher",
        )
    mem = ours.get("memory")
    if mem is not None and "error" not in mem:
        rss = mem["rssMiB"]
        rows.append(
            {
                "what": f"worker RSS over a {mem['tasks']:,}-task drain",
                "ours": f"{fmt(rss['atFirstCompletion'])} → {fmt(rss['end'])} MiB "
                f"(peak {fmt(rss['peak'])}; +{fmt(rss['growthFrom10PercentToEnd'])} after 10 %)",
                "peer": "—",
                "ratio": None,
                "aim": "flat",
                "resolve": "—",
                "verdict": "met" if mem["flat"] else "missed",
                "note": mem["flatMeans"],
            }
        )
    # context: no aim of its own
    row(
        "W1 create, 1 client (tasks/s)",
        m.get("w1One.tasksPerSecond"),
        "/s",
        "Celery",
        peer(f"{cel}/W1", "submit_tps"),
        better="higher",
    )
    row(
        "W1 create, 1 client (tasks/s)",
        m.get("w1One.tasksPerSecond"),
        "/s",
        "pgqueuer",
        peer(f"{pgq}/W1", "submit_tps"),
        better="higher",
    )
    row(
        "W1 create, 1 client, p99 (ms)",
        m.get("w1One.p99ms"),
        " ms",
        "pgqueuer",
        peer(f"{pgq}/W1", "p99_ms"),
        better="lower",
    )
    row(
        "W1 create, 1 client (tasks/s) vs PG single-row INSERT, 1 client (W4)",
        m.get("w1One.tasksPerSecond"),
        "/s",
        "pgbench",
        peer("postgres/pgbench/W4-pg-insert-c1", "tps"),
        better="higher",
    )
    row(
        "W2 drain, spawn → all completed (tasks/s)",
        m.get("w2.drain_tps"),
        "/s",
        "Celery",
        peer(f"{cel}/W2", "drain_tps"),
        better="higher",
    )
    row(
        "W3 embedded p50 (ms)",
        m.get("w3.start.p50_ms"),
        " ms",
        "Celery",
        peer(f"{cel}/W3", "p50_ms"),
        better="lower",
    )
    row(
        "W3 embedded p99 (ms)",
        m.get("w3.start.p99_ms"),
        " ms",
        "pgqueuer",
        peer(f"{pgq}/W3", "p99_ms"),
        better="lower",
    )
    return rows


#: bench_dapr's process groups -> the CPU table's columns
DAPR_GROUPS = {
    "apiApp": "api",
    "workerApps": "worker",
    "apiDaprd": "api daprd",
    "workerDaprds": "worker daprd",
}
CPU_COLUMNS = ["api", "worker", "dev", "api daprd", "worker daprd", "redis", "postgres"]


def cpu_rows(m: dict[str, Any], ours: dict[str, Any]) -> list[dict[str, Any]]:
    """CPU ms per task (request) of each process of ours, PostgreSQL, and in all."""
    rows = []

    def add(what: str, parts: dict[str, float | None]) -> None:
        known = {k: v for k, v in parts.items() if v is not None}
        total = sum(known.values()) if known else None
        rows.append(
            {
                "what": what,
                **{k: round(v, 3) for k, v in known.items()},
                "total": round(total, 3) if total is not None else None,
                "cpuBoundPerSecond2Cores": round(2000 / total, 0) if total else None,
            }
        )

    add(
        "W1 create, 1 client",
        {
            "api": m.get("w1One.apiCpuMsPerRequest"),
            "postgres": m.get("w1One.postgresCpuMsPerRequest"),
        },
    )
    add(
        "W1 create, 16 clients",
        {
            "api": m.get("w1Many.apiCpuMsPerRequest"),
            "postgres": m.get("w1Many.postgresCpuMsPerRequest"),
        },
    )
    add(
        "W2 drain (steady window)",
        {"worker": m.get("w2.workerCpuMsPerTask"), "postgres": m.get("w2.postgresCpuMsPerTask")},
    )
    add(
        "W3 embedded (20 ms apart)",
        {"dev": m.get("w3.devCpuMsPerTask"), "postgres": m.get("w3.postgresCpuMsPerTask")},
    )
    bc = ours.get("batchCreate") or {}
    if "apiCpuMsPerTask" in bc:
        add("batch create", {"api": bc["apiCpuMsPerTask"], "postgres": bc["postgresCpuMsPerTask"]})
    d = ours.get("dapr")
    if d:
        for label, block, kind in (
            ("Dapr 1 worker, latency (paced)", "oneWorker", "latency"),
            ("Dapr 1 worker, end to end", "oneWorker", "throughput"),
            ("Dapr 1 worker, backlog", "oneWorker", "backlog"),
            ("Dapr 2 workers, end to end", "twoWorkers", "throughput"),
            ("Dapr 2 workers, backlog", "twoWorkers", "backlog"),
        ):
            per = d.get(block, {}).get(kind, {}).get("cpuMsPerTask")
            if per:
                add(label, {DAPR_GROUPS.get(k, k): v for k, v in per.items()})
    return rows


# -- report ---------------------------------------------------------------------------------------
def markdown(doc: dict[str, Any]) -> str:
    p, o = doc["peers"], doc["ours"]
    lines = [
        f"### Beside the peers: `{doc['id']}`, peers' batch `{doc['batch']}` "
        f"({doc['started']} {DASH} {doc['finished']})",
        "",
        f"Command: `{doc['command']}`; commit {doc['git']['commit']}"
        + (f" (modified: {', '.join(doc['git']['modified'])})" if doc["git"]["modified"] else "")
        + f"; {doc['runs']} run(s) per side, medians.",
        f"Peers: `{p['command']}`"
        if p.get("ranHere")
        else f"Peers: batch `{doc['batch']}` of {p['batchTimes'][0]} read from {p['results']} "
        "(**not re-run here: not one run**)",
        f"PostgreSQL: {doc['postgres']['which']} — fsync={doc['postgres']['fsync']}, "
        f"synchronous_commit={doc['postgres']['synchronous_commit']}, "
        f"{doc['postgres']['server_version'].split()[0]}, shared_buffers "
        f"{doc['postgres']['shared_buffers']}, "
        f"max_connections {doc['postgres']['max_connections']}.",
        f"Sizes: W1_N={doc['sizes']['W1_N']}, W2_N={doc['sizes']['W2_N']}, "
        f"W3_N={doc['sizes']['W3_N']} every {doc['sizes']['W3_SPACING_MS']:g} ms.",
        f"Machine: {doc['machine']['nproc']} {TIMES} {doc['machine']['cpu']}; load average "
        f"{' '.join(doc['quiet']['loadavgStart'])} at the start, "
        f"{' '.join(doc['quiet']['loadavgEnd'])} at the end; "
        f"other jobs used {doc['quiet']['otherCoresBefore']} cores just before, "
        f"{p.get('otherCores', '—')} during the peers' run and "
        f"{doc['quiet']['otherCoresOursRange']} during ours.",
        f"Took: peers {fmt(p.get('seconds'))} s, ours {fmt(o.get('seconds'))} s.",
        *(
            [f"**Sizes differ** from the peers' batch: {'; '.join(p['sizeMismatch'])}."]
            if p.get("sizeMismatch")
            else []
        ),
        "",
        "| measure | ours | peer / mark | ratio | aim | resolves at | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    aims = [r for r in doc["ratios"] if r["aim"] != "—"]
    context = [r for r in doc["ratios"] if r["aim"] == "—"]
    for r in aims + context:
        ratio = f"{r['ratio']:.2f}{TIMES}" if r["ratio"] is not None else "—"
        lines.append(
            f"| {r['what']} | {r['ours']} | {r['peer']} | {ratio} | {r['aim']} | {r['resolve']} "
            f"| {r['verdict']} |"
        )
    lines += [
        "",
        "CPU per task (request), ms — ours only (the peers' harness does not measure CPU):",
        "",
    ]
    cols = list(CPU_COLUMNS)
    cols += sorted(
        {k for r in doc["cpu"] for k in r} - {"what", "total", "cpuBoundPerSecond2Cores", *cols}
    )
    cols = [c for c in cols if any(c in r for r in doc["cpu"])]
    lines.append("| workload | " + " | ".join(cols) + " | total | 2 cores at this cost |")
    lines.append("|---|" + "---|" * (len(cols) + 2))
    for r in doc["cpu"]:
        cells = [fmt(r.get(c)) if c in r else "" for c in cols]
        lines.append(
            f"| {r['what']} | "
            + " | ".join(cells)
            + f" | {fmt(r['total'])} | {fmt(r['cpuBoundPerSecond2Cores'])}/s |"
        )
    lines += ["", "The peers in this batch (medians):", ""]
    lines.append(
        "| peer | W1 tasks/s · p50 / p99 ms | W2 drain tasks/s (steady) · start-up s "
        "| W3 p50 / p95 / p99 ms |"
    )
    lines.append("|---|---|---|---|")
    med = p["medians"]
    names = sorted({k.rsplit("/", 1)[0] for k in med if k.endswith(("/W1", "/W2", "/W3"))})
    for name in names:
        a, b, c = med.get(f"{name}/W1", {}), med.get(f"{name}/W2", {}), med.get(f"{name}/W3", {})
        lines.append(
            f"| {name} | {fmt(a.get('submit_tps'))} · {fmt(a.get('p50_ms'))} / "
            f"{fmt(a.get('p99_ms'))} | {fmt(b.get('drain_tps'))} ({fmt(b.get('steady_tps'))}) · "
            f"{fmt(b.get('startup_s'))} | {fmt(c.get('p50_ms'))} / {fmt(c.get('p95_ms'))} / "
            f"{fmt(c.get('p99_ms'))} |"
        )
    refs = [k for k in med if k.startswith(("postgres/", "redis/"))]
    if refs:
        lines.append("")
        lines.append(
            "W4: "
            + "; ".join(f"{k.split('/')[-1]} {fmt(med[k].get('tps'))}/s" for k in sorted(refs))
        )
    failed = [
        f"{name} run {i + 1}: {r['error']}"
        for name in ("w1", "w2", "w3")
        for i, r in enumerate(o.get(name, []))
        if "error" in r
    ]
    failed += [
        f"{name}: {o[name]['error']}"
        for name in ("batchCreate", "dapr", "memory")
        if isinstance(o.get(name), dict) and "error" in o[name]
    ]
    if isinstance(doc.get("profiles"), dict) and "error" in doc["profiles"]:
        failed.append(f"profile: {doc['profiles']['error']}")
    failed += [f"peer {k}: {v['errors']}" for k, v in p["medians"].items() if v.get("errors")]
    if failed:
        lines += ["", "**Failed** (not in the ratios):", ""] + [f"* {f}" for f in failed]
    m = doc["oursMedians"]
    lines += [
        "",
        f"Ours (medians): W1 1 client {fmt(m.get('w1One.tasksPerSecond'))}/s, p50 "
        f"{fmt(m.get('w1One.p50ms'))} / p99 {fmt(m.get('w1One.p99ms'))} ms; 16 clients "
        f"{fmt(m.get('w1Many.tasksPerSecond'))}/s, p50 {fmt(m.get('w1Many.p50ms'))} / p99 "
        f"{fmt(m.get('w1Many.p99ms'))} ms. W2 {fmt(m.get('w2.drain_tps'))}/s spawn → done "
        f"(steady {fmt(m.get('w2.steady_tps'))}/s, start-up {fmt(m.get('w2.startup_s'))} s; "
        f"first startedAt → last completedAt {fmt(m.get('w2.stampedTasksPerSecond'))}/s). "
        f"W3 embedded startedAt p50 / p95 / p99 {fmt(m.get('w3.start.p50_ms'))} / "
        f"{fmt(m.get('w3.start.p95_ms'))} / {fmt(m.get('w3.start.p99_ms'))} ms "
        f"(completedAt p99 {fmt(m.get('w3.complete.p99_ms'))} ms).",
    ]
    if doc.get("profiles") and "error" not in doc["profiles"]:
        lines += [
            "",
            "Profiles (py-spy, extra runs): "
            + ", ".join(
                f"`{Path(v).relative_to(ROOT) if Path(v).is_relative_to(ROOT) else v}`"
                for v in doc["profiles"].values()
            ),
        ]
    return "\n".join(lines) + "\n"


# -- main -----------------------------------------------------------------------------------------
def busy_now(seconds: float = 3.0) -> float:
    """Cores busy over a few seconds while nothing of ours runs: the neighbours' load."""
    b0, t0 = _system_jiffies()
    time.sleep(seconds)
    b1, t1 = _system_jiffies()
    return round((os.cpu_count() or 1) * (b1 - b0) / max(1, t1 - t0), 2)


def git_state() -> dict[str, Any]:
    def git(*argv: str) -> str:
        return subprocess.run(["git", *argv], capture_output=True, text=True, cwd=ROOT).stdout

    modified = [
        line[3:]
        for line in git("status", "--porcelain", "--untracked-files=no").splitlines()
        if line.strip()
    ]
    return {
        "commit": git("rev-parse", "--short", "HEAD").strip(),
        "branch": git("rev-parse", "--abbrev-ref", "HEAD").strip(),
        "modified": sorted(modified),
    }


class PeersServices:
    """The peers' Redis and PostgreSQL (../shared/peers/services.sh). Stopped at the end only
    when nothing listened on their ports before this run (so never someone else's), and not
    when KEEP_SERVICES=1 is set."""

    def __init__(self, pdir: Path) -> None:
        self.pdir = pdir
        self.up_before = port_open(PEERS_PG_PORT) or port_open(PEERS_REDIS_PORT)
        self.env = {**os.environ, "PEERS_WORK": str(PEERS_WORK)}

    def ensure_up(self) -> None:
        if not port_open(PEERS_PG_PORT):
            log("starting the peers' services (services.sh start)")
            subprocess.run(
                [str(self.pdir / "services.sh"), "start"],
                check=True,
                cwd=self.pdir,
                env=self.env,
                stdout=sys.stderr,
            )

    def stop_if_ours(self) -> None:
        if self.up_before or os.environ.get("KEEP_SERVICES") == "1":
            return
        subprocess.run(
            [str(self.pdir / "services.sh"), "stop"],
            cwd=self.pdir,
            check=False,
            env=self.env,
            stdout=sys.stderr,
        )


def attempt(name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one workload; a failure is recorded (and reported) instead of ending the run."""
    try:
        return fn()
    except Exception as error:  # a benchmark step failed: keep the others' results
        log(f"{name} FAILED: {type(error).__name__}: {error}")
        return {"error": f"{type(error).__name__}: {error}"}


def headline(name: str, r: dict[str, Any]) -> str:
    if name == "w1":
        one, many = r["oneClient"], r["clients16"]
        return (
            f"1 client {one['tasksPerSecond']}/s p99 {one['p99ms']} ms; "
            f"16 clients {many['tasksPerSecond']}/s"
        )
    if name == "w2":
        more = r.get("replicas")
        return (
            f"drain {r['drain_tps']}/s, steady {r['steady_tps']}/s, startup {r['startup_s']} s, "
            f"worker {r['workerCpuMsPerTask']} ms CPU/task"
            + (
                f"; {more['workers']} workers: drain {more['drain_tps']}/s, "
                f"steady {more['steady_tps']}/s"
                if more
                else ""
            )
        )
    return f"startedAt {r['sendToStartedAt']}"


def run_ours(args: argparse.Namespace, doc: dict[str, Any]) -> dict[str, Any]:
    """Our workloads on PostgreSQL (the peers' cluster or our own); fills doc['postgres']."""
    wanted = set(filter(None, args.ours.split(",")))
    ours: dict[str, Any] = {}
    t_ours = time.perf_counter()
    cluster = None
    if args.pg == "peers":
        cluster = Cluster(PEERS_PG_PORT, PEERS_WORK / "pg")
        why = (
            "the peers' own cluster (../shared/peers/services.sh: initdb defaults, "
            f"127.0.0.1:{PEERS_PG_PORT}, {PEERS_WORK}/pg), database commonops_bench: the "
            "server pgqueuer and Procrastinate ran on in this batch, same settings and disk"
        )
    else:
        why = (
            "a cluster of ours (scripts/postgres.sh start <port> <dir>, no `fast`): same "
            "binaries and durability settings as the peers', max_connections 300"
        )
    with workdir("bench-beside-") as work, database("postgres", work, cluster) as db:
        doc["postgres"] = {"which": why, **db.info}
        steps: dict[str, Callable[[int], dict[str, Any]]] = {
            "w1": lambda run: w1(db, work, processes=args.api_processes),
            "w2": lambda run: w2(db, work, W2_N, run, replicas=args.worker_replicas),
            "w3": lambda run: w3(db, work),
        }
        for run in range(args.runs):
            log(f"=== ours run {run + 1}/{args.runs}")
            for name, fn in steps.items():
                if name in wanted:
                    r = attempt(name.upper(), lambda fn=fn, run=run: fn(run))  # type: ignore[misc]
                    ours.setdefault(name, []).append(r)
                    if "error" not in r:
                        log(f"{name.upper()}: {headline(name, r)}")
        if args.batch_create:
            ours["batchCreate"] = attempt("batch create", lambda: batch_create(db, work, args))
            log(f"batch create: {ours['batchCreate']}")
        if args.dapr:
            ours["dapr"] = attempt("Dapr", lambda: dapr(db, work, args))
        if args.memory:
            ours["memory"] = attempt("memory", lambda: memory(db, work, args.memory))
            if "error" not in ours["memory"]:
                log(f"memory: {ours['memory']['rssMiB']}, flat={ours['memory']['flat']}")
        if args.profile is not None:
            doc["profiles"] = attempt("profile", lambda: profile_runs(db, work, args.profile))
    ours["seconds"] = round(time.perf_counter() - t_ours, 1)
    return ours


def _interrupted(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--runs",
        type=int,
        default=int(os.environ.get("RUNS", "1")),
        help="runs of the peers' suite and of each of our workloads (medians)",
    )
    parser.add_argument(
        "--peers",
        default=os.environ.get("ONLY", "w4 celery pgqueuer"),
        help="run_all.sh's ONLY (w4 celery procrastinate pgqueuer arq)",
    )
    parser.add_argument("--peers-dir", help="the peers' harness (default ../shared/peers)")
    parser.add_argument("--peers-batch", help="do not run the peers; use this batch of $RESULTS")
    parser.add_argument(
        "--pg",
        choices=["peers", "own"],
        default="peers",
        help="peers = the peers' cluster (127.0.0.1:$PEERS_PG_PORT, kept for "
        "us); own = scripts/postgres.sh start <port> <dir> (fsync on)",
    )
    parser.add_argument(
        "--reuse-services",
        action="store_true",
        help="accept peers' services already running (they are then left up)",
    )
    parser.add_argument("--ours", default="w1,w2,w3", help="which of our W1..W3 to run")
    parser.add_argument("--dapr", action="store_true", help="also the real Dapr shape")
    parser.add_argument("--dapr-tasks", type=int, default=3000)
    parser.add_argument("--batch-create", action="store_true", help="also POST /tasks:batch")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--batch-tasks", type=int, default=50_000)
    parser.add_argument("--batch-clients", type=int, default=4)
    parser.add_argument(
        "--memory",
        type=int,
        nargs="?",
        const=100_000,
        default=None,
        metavar="N",
        help="also an N-task drain (default 100,000), worker RSS",
    )
    parser.add_argument("--profile", type=Path, help="py-spy profiles of extra runs into DIR")
    parser.add_argument(
        "--worker-replicas",
        type=int,
        default=2,
        metavar="N",
        help="W2 also drained by N worker processes together (1: not)",
    )
    parser.add_argument(
        "--api-processes",
        type=int,
        default=2,
        metavar="N",
        help="W1's 16 clients also against `api --workers N` (1: not)",
    )
    parser.add_argument(
        "--batch",
        default=time.strftime("%Y%m%dT%H%M%S"),
        help="batch id for the peers' records and our files",
    )
    args = parser.parse_args()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _interrupted)
    if args.profile is not None:
        args.profile = args.profile.resolve()
        ensure_py_spy()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    pdir = peers_dir(args.peers_dir)
    batch = args.peers_batch or args.batch

    doc: dict[str, Any] = {
        "bench": "beside-peers",
        "batch": batch,
        "id": args.batch,
        "started": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
        "command": " ".join(["bench/beside_peers.py", *sys.argv[1:]]),
        "env": {
            k: os.environ[k]
            for k in (
                "W1_N",
                "W1_WARMUP",
                "W2_N",
                "W3_N",
                "W3_SPACING_MS",
                "W4_SECONDS",
                "PEERS_WORK",
                "RESULTS",
                "OPS_DAPRD",
            )
            if k in os.environ
        },
        "runs": args.runs,
        "sizes": {
            "W1_N": W1_N,
            "W1_WARMUP": W1_WARMUP,
            "W1_CLIENTS": W1_CLIENTS,
            "W2_N": W2_N,
            "W3_N": W3_N,
            "W3_SPACING_MS": W3_SPACING_MS,
        },
        "git": git_state(),
        "machine": machine(),
        "quiet": {"loadavgStart": Path("/proc/loadavg").read_text().split()[:3]},
    }
    log(f"load average {doc['quiet']['loadavgStart']}; sampling the machine for 3 s")
    doc["quiet"]["otherCoresBefore"] = busy_now()

    services = PeersServices(pdir)
    if (
        services.up_before
        and not args.reuse_services
        and (not args.peers_batch or args.pg == "peers")
    ):
        raise SystemExit(
            f"something already listens on 127.0.0.1:{PEERS_PG_PORT} or :{PEERS_REDIS_PORT} "
            "(the peers' services, perhaps someone else's run): wait, or pass --reuse-services "
            "(they are then left running), or set PEERS_PG_PORT/PEERS_REDIS_PORT/PEERS_WORK"
        )
    # run_all.sh stops its services at its end unless KEEP_SERVICES=1; we need PostgreSQL after
    keep = args.pg == "peers" or services.up_before or os.environ.get("KEEP_SERVICES") == "1"
    try:
        if args.peers_batch:
            doc["peers"] = {"ranHere": False, "results": str(RESULTS)}
        else:
            doc["peers"] = {
                "ranHere": True,
                "results": str(RESULTS),
                **run_peers(pdir, batch, args.runs, args.peers, keep),
            }
        records = read_batch(batch)
        if not records:
            raise SystemExit(f"no records of batch {batch} in {RESULTS}")
        doc["peers"]["records"] = records
        doc["peers"]["batchTimes"] = [records[0].get("ts"), records[-1].get("ts")]
        doc["peers"]["medians"] = peer_medians(records)
        doc["peers"]["sizeMismatch"] = size_mismatch(records)
        log(f"peers: {len(records)} records of batch {batch}")
        if args.pg == "peers":
            services.ensure_up()
        doc["ours"] = run_ours(args, doc)
    finally:
        services.stop_if_ours()
    ours = doc["ours"]

    m = ours_medians(ours)
    doc["oursMedians"] = m
    doc["ratios"] = ratio_rows(doc["peers"]["medians"], m, ours)
    doc["cpu"] = cpu_rows(m, ours)
    windows = [w for r in ours.get("w1", []) for w in (r.get("oneClient"), r.get("clients16"))]
    windows += [r.get("steadyWindow") for r in ours.get("w2", [])] + ours.get("w3", [])
    windows = [w for w in windows if w]
    others = [w["otherCores"] for w in windows if "otherCores" in w]
    doc["quiet"]["otherCoresOursRange"] = f"{min(others)}{DASH}{max(others)}" if others else "—"
    doc["quiet"]["loadavgEnd"] = Path("/proc/loadavg").read_text().split()[:3]
    doc["finished"] = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
    json_path = OUT_DIR / f"beside-peers-{args.batch}.json"
    md_path = OUT_DIR / f"beside-peers-{args.batch}.md"
    json_path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    report = markdown(doc)
    md_path.write_text(report)
    print(report, flush=True)
    log(f"wrote {json_path.relative_to(ROOT)} and {md_path.relative_to(ROOT)}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt as stop:
        log(f"interrupted ({stop}); everything this run started has been stopped")
        sys.exit(130)
