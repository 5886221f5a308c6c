"""The Dapr shape under load: real daprd sidecars, Redis Streams, PostgreSQL with fsync on.

    OPS_DAPRD=$HOME/.cache/common-operations/dapr/1.18.3/daprd .venv/bin/python bench/bench_dapr.py
        [--runs 3] [--tasks 3000] [--clients 16] [--latency-tasks 300] [--gap-ms 20]
        [--only dapr,sqlite,postgres] [--kinds latency,throughput,backlog] [--profile DIR]

One run starts its own PostgreSQL cluster (scripts/postgres.sh, fsync on) and Redis, and
measures, each on emptied tables, `--runs` times (medians reported):

- latency: an idle worker; `--latency-tasks` `noop` creates sent `--gap-ms` apart over HTTP
  (header X-User-ID) to the API app; latency = the task's `startedAt` (stamped at the claim,
  i.e. handler start) minus the client's send time (one machine, one clock); p50/p99, and how
  many were claimed by push (a doorbell) or by poll (GET .../tasks/{id}/attempts -> dispatch).
- throughput: `--tasks` `noop` creates sent as fast as `--clients` concurrent keep-alive HTTP
  clients can; tasks/s = N / (last completedAt - first send). Also: the create rate, and when
  the outbox (created/started/completed events) was drained.
- backlog: N pending tasks committed at once behind the API (copies of one created over
  HTTP), then drained: what the pipeline behind the API sustains (relays, sidecars, Redis,
  doorbells, claims, finishes), without the API's create path.

Shapes: Dapr (API + daprd; worker + daprd; one replica, then two with the same app id
`operations-worker`), then the embedded mode (`common-ops dev`) on SQLite and on the same
PostgreSQL. Every measure also reports CPU seconds per task of each process group (read
from /proc), and how much of the machine other jobs used meanwhile (`otherCores`): the
machine may be shared, and CPU per task hardly depends on that while tasks/s does.
Results: bench/results/dapr.json (and a summary line on stdout); progress on stderr.
With --profile, one extra (unreported) run per shape and kind is sampled with py-spy.
A PYTHONPATH pointing at a copy of service/ and worker/ runs the apps from that copy.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import contextlib
import importlib.util
import json
import math
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import uvloop

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = ROOT / ".venv" / "bin"
COMMON_OPS = str(VENV_BIN / "common-ops")
PG_SCRIPT = str(ROOT / "scripts" / "postgres.sh")
RESULTS = ROOT / "bench" / "results" / "dapr.json"
TASKS = "/api/v1/operations/tasks"
USER = "bench"
NOOP = json.dumps({"taskType": "noop"}).encode()
TABLES = "task_events, task_logs, task_attempts, outbox, job_runs, dead_letters, tasks"
#: a finished task's row as it was when created (bench copies of it are pending again)
PENDING_AGAIN = {
    "status": "pending",
    "attempts": 0,
    "version": 1,
    "progress": 0,
    "result": None,
    "started_at": None,
    "completed_at": None,
    "worker_id": None,
    "lease_until": None,
    "error_message": None,
}
AIMS = {"daprLatencyP99ms": 15.0, "daprTwoReplicasTasksPerSecond": 1500.0}

_spec = importlib.util.spec_from_file_location("daprlocal", ROOT / "scripts" / "daprlocal.py")
assert _spec is not None
assert _spec.loader is not None
daprlocal = importlib.util.module_from_spec(_spec)
sys.modules["daprlocal"] = daprlocal
_spec.loader.exec_module(daprlocal)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): the ceil(q/100 * n)-th smallest, as
    ../shared/peers/common.py and _common.percentile compute it."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def med(values: Sequence[float]) -> float:
    return round(float(statistics.median(values)), 3)


# -- machine and CPU accounting ---------------------------------------------------------------
def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = None
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = round(int(line.split()[1]) / 1024 / 1024, 1)
    redis = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memGiB": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "redis": redis.split()[2].removeprefix("v=") if redis else None,
        "loadavgAtStart": Path("/proc/loadavg").read_text().split()[:3],
    }


def cpu_seconds(pid: int, *, reaped: bool = False) -> float:
    """User + system CPU of a process; with `reaped`, also of its children that have exited."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if reaped:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry.name))
    return out


def _system_jiffies() -> tuple[int, int]:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values[:8]) - idle, sum(values[:8])


class Meter:
    """CPU seconds of named process groups, of the load generator and of the whole machine."""

    def __init__(self, groups: dict[str, list[int] | Any]) -> None:
        self.groups = groups  # name -> list of pids, or a callable returning CPU seconds

    def _read(self) -> dict[str, float]:
        out = {}
        for name, group in self.groups.items():
            out[name] = group() if callable(group) else sum(cpu_seconds(p) for p in group)
        return out

    def __enter__(self) -> Meter:
        self._cpu = self._read()
        self._self = time.process_time()
        self._busy, self._total = _system_jiffies()
        self._wall = time.perf_counter()
        return self

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self._wall
        busy, total = _system_jiffies()
        now = self._read()
        result = {f"{n}Cpu": round(now[n] - self._cpu[n], 2) for n in self.groups}
        result["loadGeneratorCpu"] = round(time.process_time() - self._self, 2)
        result["machineBusyCores"] = round(
            (os.cpu_count() or 1) * (busy - self._busy) / max(1, total - self._total), 2
        )
        result["wallSeconds"] = round(wall, 3)
        ours = sum(now[n] - self._cpu[n] for n in self.groups) + result["loadGeneratorCpu"]
        # what other jobs on the machine took meanwhile (the machine may be shared)
        result["otherCores"] = round(max(0.0, result["machineBusyCores"] - ours / wall), 2)
        return result

    def __exit__(self, *exc: object) -> None:
        pass


# -- PostgreSQL --------------------------------------------------------------------------------
class Postgres:
    """Our own cluster in `workdir` (scripts/postgres.sh, fsync on), or, with `port` and
    `data_dir`, a cluster that is already running (start/stop then leave it alone and the
    databases made by `create` are dropped by `drop`)."""

    def __init__(
        self, workdir: Path, *, port: int | None = None, data_dir: Path | None = None
    ) -> None:
        self.external = port is not None
        self.port = port if port is not None else daprlocal.free_port()
        self.dir = data_dir if data_dir is not None else workdir / "pg"

    def start(self) -> Postgres:
        if self.external:
            return self
        log(f"starting PostgreSQL (fsync on) on 127.0.0.1:{self.port}")
        subprocess.run([PG_SCRIPT, "start", str(self.port), str(self.dir)], check=True)
        return self

    def stop(self) -> None:
        if self.external:
            return
        subprocess.run([PG_SCRIPT, "stop", str(self.dir)], check=False)
        log("PostgreSQL stopped")

    def drop(self, db: str) -> None:
        asyncio.run(self.sql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"))

    def url(self, db: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{db}"

    def dsn(self, db: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def cpu(self) -> float:
        """CPU of the whole cluster: live backends, and those that exited (the postmaster reaps
        them, so their time moves to its children's account)."""
        try:
            master = int((self.dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return 0.0
        return cpu_seconds(master, reaped=True) + sum(cpu_seconds(p) for p in children(master))

    async def sql(self, statement: str, db: str = "postgres") -> Any:
        conn = await asyncpg.connect(self.dsn(db))
        try:
            return await conn.fetch(statement)
        finally:
            await conn.close()

    def create(self, db: str) -> str:
        asyncio.run(self.sql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        asyncio.run(self.sql(f"CREATE DATABASE {db}"))
        url = self.url(db)
        subprocess.run([COMMON_OPS, "migrate", "--database-url", url], check=True, env=clean_env())
        return url

    def settings(self) -> dict[str, str]:
        names = (
            "server_version",
            "fsync",
            "synchronous_commit",
            "wal_sync_method",
            "shared_buffers",
        )

        async def read() -> dict[str, str]:
            return {n: (await self.sql(f"SHOW {n}"))[0][0] for n in names}

        return asyncio.run(read())


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPS_") or k == "OPS_DAPRD"}
    env.update({"OPS_LOG_LEVEL": "warning", **(extra or {})})
    return env


# -- a database the bench reads directly ---------------------------------------------------------
class Store:
    """Reads task timestamps and empties tables: asyncpg for PostgreSQL, sqlite3 for SQLite."""

    def __init__(self, kind: str, target: str) -> None:
        self.kind = kind
        self.target = target  # a DSN or a file path

    async def _pg(self, statement: str, *args: Any) -> list[Any]:
        conn = await asyncpg.connect(self.target)
        try:
            return list(await conn.fetch(statement, *args))
        finally:
            await conn.close()

    def _sqlite(self, statement: str, *args: Any) -> list[Any]:
        import sqlite3

        with contextlib.closing(sqlite3.connect(self.target, timeout=30)) as conn:
            rows = conn.execute(statement, args).fetchall()
            conn.commit()
            return rows

    async def query(self, statement: str) -> list[Any]:
        if self.kind == "postgres":
            return await self._pg(statement)
        return await asyncio.to_thread(self._sqlite, statement)

    async def counts(self) -> tuple[int, int, int]:
        """(tasks, completed tasks, unpublished outbox rows)."""
        rows = await self.query(
            "SELECT (SELECT count(*) FROM tasks),"
            " (SELECT count(*) FROM tasks WHERE status = 'completed'),"
            " (SELECT count(*) FROM outbox WHERE published_at IS NULL)"
        )
        return tuple(int(v) for v in rows[0])  # type: ignore[return-value]

    async def times(self) -> dict[str, float]:
        rows = await self.query(
            "SELECT min(created_at), max(started_at), max(completed_at),"
            " (SELECT max(published_at) FROM outbox) FROM tasks"
        )
        keys = ("firstCreated", "lastStarted", "lastCompleted", "lastPublished")
        return {k: to_epoch(v) for k, v in zip(keys, rows[0], strict=True)}

    async def dispatch_counts(self) -> dict[str, int]:
        rows = await self.query("SELECT dispatch, count(*) FROM task_attempts GROUP BY dispatch")
        return {str(d): int(n) for d, n in rows}

    async def clone(self, template: str, count: int) -> None:
        """Insert `count` pending copies of a finished task, with their created rows.

        Each copy is the template's row put back as it was at creation (PENDING_AGAIN), its
        first task_events row and its first outbox row (the `created` event) unpublished,
        with the copy's id; one transaction. The relay sends them at its next kick.
        """
        ids = [uuid.uuid4() for _ in range(count)]
        if self.kind == "postgres":
            conn = await asyncpg.connect(self.target)
            try:
                await conn.set_type_codec(
                    "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
                )
                tid = uuid.UUID(template)
                first = "SELECT * FROM {} WHERE task_id = $1 ORDER BY id LIMIT 1"
                task = dict(await conn.fetchrow("SELECT * FROM tasks WHERE id = $1", tid))
                event = dict(await conn.fetchrow(first.format("task_events"), tid))
                box = dict(await conn.fetchrow(first.format("outbox"), tid))
                task.update(PENDING_AGAIN)
                event.pop("id")
                box.pop("id")
                box.update(published_at=None, attempts=0, last_error=None)
                rows: dict[str, list[tuple[Any, ...]]] = {
                    "tasks": [],
                    "task_events": [],
                    "outbox": [],
                }
                for new in ids:
                    rows["tasks"].append(tuple({**task, "id": new}.values()))
                    rows["task_events"].append(tuple({**event, "task_id": new}.values()))
                    payload = {**box["payload"], "id": str(new)}
                    copy = {**box, "task_id": new, "payload": payload}
                    rows["outbox"].append(tuple(copy.values()))
                async with conn.transaction():
                    for table, row in (("tasks", task), ("task_events", event), ("outbox", box)):
                        names = ",".join(row)
                        marks = ",".join(f"${i + 1}" for i in range(len(row)))
                        await conn.executemany(
                            f"INSERT INTO {table} ({names}) VALUES ({marks})", rows[table]
                        )
            finally:
                await conn.close()
            return

        def fill() -> None:
            import sqlite3

            with contextlib.closing(sqlite3.connect(self.target, timeout=30)) as conn:
                conn.row_factory = sqlite3.Row
                tid = uuid.UUID(template).hex
                first = "SELECT * FROM {} WHERE task_id = ? ORDER BY id LIMIT 1"
                task = dict(conn.execute("SELECT * FROM tasks WHERE id = ?", (tid,)).fetchone())
                event = dict(conn.execute(first.format("task_events"), (tid,)).fetchone())
                box = dict(conn.execute(first.format("outbox"), (tid,)).fetchone())
                task.update(PENDING_AGAIN)
                event.pop("id")
                box.pop("id")
                box.update(published_at=None, attempts=0, last_error=None)
                for table, row, key in (
                    ("tasks", task, "id"),
                    ("task_events", event, "task_id"),
                    ("outbox", box, "task_id"),
                ):
                    rows = []
                    for new in ids:
                        copy = {**row, key: new.hex}
                        if table == "outbox":
                            payload = {**json.loads(row["payload"]), "id": str(new)}
                            copy["payload"] = json.dumps(payload)
                        rows.append(tuple(copy.values()))
                    names, marks = ",".join(row), ",".join("?" * len(row))
                    conn.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
                conn.commit()

        await asyncio.to_thread(fill)

    async def empty(self) -> None:
        if self.kind == "postgres":
            await self._pg(f"TRUNCATE {TABLES} RESTART IDENTITY")
            await self._pg("VACUUM ANALYZE")
            return

        def wipe() -> None:
            import sqlite3

            with contextlib.closing(sqlite3.connect(self.target, timeout=30)) as conn:
                for table in TABLES.split(", "):
                    conn.execute(f"DELETE FROM {table}")
                conn.commit()
                conn.execute("VACUUM")

        await asyncio.to_thread(wipe)


def to_epoch(value: Any) -> float:
    if value is None:
        return float("nan")
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:  # SQLite stores naive UTC
        from datetime import UTC

        value = value.replace(tzinfo=UTC)
    return float(value.timestamp())


# -- a lean keep-alive HTTP/1.1 client ---------------------------------------------------------
class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    @staticmethod
    def request(method: str, path: str, body: bytes = b"") -> bytes:
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"X-User-ID: {USER}"]
        if body:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await self.reader.readexactly(length) if length else b""
        return status, body

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


CREATE = Connection.request("POST", TASKS, NOOP)


# -- the two measures --------------------------------------------------------------------------
async def paced_creates(port: int, count: int, gap: float) -> list[tuple[float, str]]:
    conn = await Connection.open(port)
    sent: list[tuple[float, str]] = []
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    try:
        for _ in range(count):
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at += gap
            at = time.time()
            status, body = await conn.send(CREATE)
            if status != 201:
                raise RuntimeError(f"create answered {status}: {body[:300]!r}")
            sent.append((at, json.loads(body)["id"]))
    finally:
        await conn.close()
    return sent


async def wait_done(store: Store, count: int, timeout: float, *, outbox: bool = True) -> None:
    deadline = time.monotonic() + timeout
    last: tuple[int, int, int] = (0, 0, 0)
    while time.monotonic() < deadline:
        last = await store.counts()
        if last[1] >= count and (not outbox or last[2] == 0):
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"not done after {timeout}s: tasks, completed, unpublished = {last}")


async def latency_run(
    port: int, store: Store, count: int, gap: float, meter: Meter | None = None
) -> dict[str, Any]:
    sent = await paced_creates(port, count, gap)
    await wait_done(store, count, 60)
    cpu = meter.stop() if meter is not None else None  # not the reads below
    conn = await Connection.open(port)
    start, complete, dispatch = [], [], {"push": 0, "poll": 0}
    try:
        for at, task_id in sent:
            status, body = await conn.send(Connection.request("GET", f"{TASKS}/{task_id}"))
            task = json.loads(body)
            if status != 200 or task["status"] != "completed":
                raise RuntimeError(f"task {task_id} is not completed: {task}")
            start.append(datetime.fromisoformat(task["startedAt"]).timestamp() - at)
            complete.append(datetime.fromisoformat(task["completedAt"]).timestamp() - at)
            status, body = await conn.send(Connection.request("GET", f"{TASKS}/{task_id}/attempts"))
            for attempt in json.loads(body):
                dispatch[attempt["dispatch"]] = dispatch.get(attempt["dispatch"], 0) + 1
    finally:
        await conn.close()
    return {
        "tasks": len(sent),
        "startP50ms": round(1000 * percentile(start, 50), 2),
        "startP99ms": round(1000 * percentile(start, 99), 2),
        "startMaxms": round(1000 * max(start), 2),
        "completeP50ms": round(1000 * percentile(complete, 50), 2),
        "completeP99ms": round(1000 * percentile(complete, 99), 2),
        "dispatch": dispatch,
        **({"cpu": cpu} if cpu is not None else {}),
    }


async def burst_creates(port: int, count: int, clients: int) -> tuple[float, float]:
    """`count` creates over `clients` keep-alive connections; returns (first send, last answer)."""
    conns = [await Connection.open(port) for _ in range(clients)]
    left = count
    first = time.time()

    async def client(conn: Connection) -> None:
        nonlocal left
        while left > 0:
            left -= 1
            status, body = await conn.send(CREATE)
            if status != 201:
                raise RuntimeError(f"create answered {status}: {body[:300]!r}")

    try:
        await asyncio.gather(*(client(c) for c in conns))
        return first, time.time()
    finally:
        for c in conns:
            await c.close()


async def throughput_run(port: int, store: Store, count: int, clients: int) -> dict[str, Any]:
    first, created = await burst_creates(port, count, clients)
    await wait_done(store, count, 300)
    t = await store.times()
    dispatch = await store.dispatch_counts()
    total = t["lastCompleted"] - first
    return {
        "tasks": count,
        "tasksPerSecond": round(count / total, 1),
        "seconds": round(total, 3),
        "createSeconds": round(created - first, 3),
        "createsPerSecond": round(count / (created - first), 1),
        "outboxDrainedSeconds": round(t["lastPublished"] - first, 3),
        "dispatch": dispatch,
    }


async def backlog_run(port: int, store: Store, count: int) -> dict[str, Any]:
    """`count` pending tasks committed at once, then drained by the worker(s).

    One task is created over HTTP and run; `count` - 1 pending copies of it (with their
    unpublished `created` outbox rows) are inserted in one transaction while the relays
    sleep; one more create over HTTP then kicks the API's relay, and its send time starts
    the clock. This measures the pipeline behind the API (relay, broker, doorbells, claims,
    finishes, the workers' relays), not the API's create path.
    """
    conn = await Connection.open(port)
    try:
        status, body = await conn.send(CREATE)
        assert status == 201, body
        template = json.loads(body)["id"]
        await wait_done(store, 1, 60)
        await store.clone(template, count - 1)
        first = time.time()
        status, body = await conn.send(CREATE)  # commits, then kicks the relay
        assert status == 201, body
    finally:
        await conn.close()
    await wait_done(store, count + 1, 300)
    t = await store.times()
    dispatch = await store.dispatch_counts()
    return {
        "tasks": count,
        "tasksPerSecond": round(count / (t["lastCompleted"] - first), 1),
        "seconds": round(t["lastCompleted"] - first, 3),
        "outboxDrainedSeconds": round(t["lastPublished"] - first, 3),
        "dispatch": dispatch,
    }


# -- the shapes ----------------------------------------------------------------------------------
class Shape:
    """Something serving the API on `port`, with worker(s); see DaprShape and EmbeddedShape."""

    port: int
    store: Store
    command: str

    def cpu_groups(self) -> dict[str, Any]:
        raise NotImplementedError

    def profile_pids(self) -> dict[str, int]:
        raise NotImplementedError


@contextlib.contextmanager
def py_spy(pids: dict[str, int], out: Path | None) -> Iterator[None]:
    if out is None:
        yield
        return
    spy = shutil.which("py-spy", path=str(VENV_BIN)) or shutil.which("py-spy")
    if spy is None:
        raise RuntimeError("py-spy is not installed: .venv/bin/pip install py-spy")
    out.mkdir(parents=True, exist_ok=True)
    procs = []
    for name, pid in pids.items():
        argv = [spy, "record", "--pid", str(pid), "--rate", "200", "--format", "raw", "--gil"]
        argv += ["--output", str(out / f"{name}.txt"), "--nonblocking"]
        procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(1.0)
    try:
        yield
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGINT)
        for proc in procs:
            proc.wait(timeout=60)
        log(f"profiles written to {out}")


def _summarise(kind: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in runs if "error" not in r]
    out: dict[str, Any] = {"runs": runs}
    if not ok:
        return out
    if kind == "latency":
        for key in ("startP50ms", "startP99ms", "completeP50ms", "completeP99ms"):
            out[key] = med([r[key] for r in ok])
        out["dispatch"] = {k: sum(r["dispatch"].get(k, 0) for r in ok) for k in ("push", "poll")}
    else:
        for key in ("tasksPerSecond", "createsPerSecond", "outboxDrainedSeconds"):
            if key in ok[0]:
                out[key] = med([r[key] for r in ok])
    out["otherCoresMedian"] = med([r["cpu"]["otherCores"] for r in ok])
    # CPU per task of each process group (the machine may be shared: this, unlike tasks/s,
    # hardly depends on what else runs), and the rate 2 dedicated cores could sustain at it
    groups = [k for k in ok[0]["cpu"] if k.endswith("Cpu") and k != "loadGeneratorCpu"]
    per_task = {
        g.removesuffix("Cpu"): med([1000 * r["cpu"][g] / r["tasks"] for r in ok]) for g in groups
    }
    out["cpuMsPerTask"] = per_task
    total = sum(per_task.values())
    out["cpuMsPerTaskTotal"] = round(total, 2)
    out["cpuBoundTasksPerSecond2Cores"] = round(2000 / total, 1) if total else None
    return out


def _one(
    shape: Shape, kind: str, args: argparse.Namespace, meter: Meter | None = None
) -> dict[str, Any]:
    if kind == "latency":
        return uvloop.run(
            latency_run(shape.port, shape.store, args.latency_tasks, args.gap_ms / 1000, meter)
        )
    if kind == "throughput":
        return uvloop.run(throughput_run(shape.port, shape.store, args.tasks, args.clients))
    return uvloop.run(backlog_run(shape.port, shape.store, args.tasks))


def measure(
    shape: Shape,
    name: str,
    args: argparse.Namespace,
    kinds: Sequence[str] = ("latency", "throughput", "backlog"),
) -> dict[str, Any]:
    """Warm up, then `args.runs` runs of each kind, each on emptied tables; medians."""
    out: dict[str, Any] = {}
    asyncio.run(shape.store.empty())
    uvloop.run(paced_creates(shape.port, 30, 0.01))  # warm-up: connections, statement caches
    uvloop.run(wait_done(shape.store, 30, 60))
    for kind in kinds:
        if kind not in args.kinds:
            continue
        runs = []
        for i in range(args.runs):
            asyncio.run(shape.store.empty())
            time.sleep(1.0)
            with Meter(shape.cpu_groups()) as meter:
                try:
                    result = _one(shape, kind, args, meter)
                except (TimeoutError, RuntimeError, AssertionError) as error:
                    result = {"error": f"{type(error).__name__}: {error}"}
                result.setdefault("cpu", meter.stop())
            log(f"{name} {kind} run {i}: {json.dumps(result)}")
            runs.append(result)
        out[kind] = _summarise(kind, runs)
        if args.profile is not None and kind != "latency":
            asyncio.run(shape.store.empty())
            time.sleep(1.0)
            with py_spy(shape.profile_pids(), args.profile / f"{name}-{kind}"):
                result = _one(shape, kind, args)
            log(f"{name} profiled {kind} run (not counted): {json.dumps(result)}")
            out[f"profiled-{kind}"] = result
    return out


class DaprShape(Shape):
    def __init__(self, workdir: Path, database_url: str, dsn: str, pg: Postgres) -> None:
        self.workdir = workdir
        self.database_url = database_url
        self.store = Store("postgres", dsn)
        self.pg = pg
        self.daprd = daprlocal.daprd_path()
        self.prefix = f"b{uuid.uuid4().hex[:6]}."
        self.redis: Any = None
        self.api: Any = None
        self.workers: list[Any] = []

    def env(self, **extra: str) -> dict[str, str]:
        env: dict[str, str] = daprlocal.dapr_env(
            self.database_url, self.prefix, self.workdir / "data", **extra
        )
        return env

    def start(self) -> DaprShape:
        self.redis = daprlocal.Redis(daprlocal.free_port(), self.workdir).start()
        self.resources = daprlocal.render_resources(
            self.workdir / "resources", redis_port=self.redis.port
        )
        self.api = daprlocal.DaprApp(
            "operations-api",
            daprlocal.ops_command("api"),
            self.workdir,
            self.resources,
            self.daprd,
            self.env(),
        ).start()
        self.port = self.api.app_port
        self.command = "daprlocal DaprApp: " + " ".join(self.api.command) + " + daprd 1.18.3"
        return self

    def add_worker(self) -> None:
        i = len(self.workers)
        worker = daprlocal.DaprApp(
            "operations-worker",
            daprlocal.ops_command("worker"),
            self.workdir / f"worker-{i}",
            self.resources,
            self.daprd,
            self.env(OPS_WORKER_ID=f"bench-worker-{i}"),
        ).start()
        self.workers.append(worker)
        time.sleep(1.0)  # let the subscription settle

    def stop(self) -> None:
        for app in [*self.workers, self.api]:
            if app is not None:
                app.stop()
        if self.redis is not None:
            self.redis.stop()

    def cpu_groups(self) -> dict[str, Any]:
        groups: dict[str, Any] = {
            "apiApp": [self.api.app.popen.pid],
            "apiDaprd": [self.api.sidecar.popen.pid],
            "workerApps": [w.app.popen.pid for w in self.workers],
            "workerDaprds": [w.sidecar.popen.pid for w in self.workers],
            "redis": [self.redis.proc.popen.pid],
            "postgres": self.pg.cpu,
        }
        return groups

    def profile_pids(self) -> dict[str, int]:
        pids = {"api": self.api.app.popen.pid}
        pids.update({f"worker-{i}": w.app.popen.pid for i, w in enumerate(self.workers)})
        return pids


class EmbeddedShape(Shape):
    def __init__(self, workdir: Path, kind: str, pg: Postgres | None, database_url: str) -> None:
        self.workdir = workdir
        self.kind = kind
        self.pg = pg
        self.port = daprlocal.free_port()
        data = workdir / f"dev-{kind}"
        extra = {"OPS_DATA_DIR": str(data)}
        if kind == "postgres":
            extra["OPS_DATABASE_URL"] = database_url
            self.store = Store("postgres", database_url.replace("+asyncpg", ""))
        else:
            self.store = Store("sqlite", str(data / "operations.db"))
        self.env = clean_env(extra)
        self.argv = [COMMON_OPS, "dev", "--port", str(self.port)]
        shown = {k: v for k, v in self.env.items() if k.startswith("OPS_") and k != "OPS_DAPRD"}
        self.command = " ".join(f"{k}={v}" for k, v in shown.items()) + " " + " ".join(self.argv)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> EmbeddedShape:
        log_file = open(self.workdir / f"dev-{self.kind}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.argv, env=self.env, stdout=log_file, stderr=subprocess.STDOUT, cwd=ROOT
        )
        log_file.close()
        daprlocal.wait_http(f"http://127.0.0.1:{self.port}/health/live")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def cpu_groups(self) -> dict[str, Any]:
        assert self.proc is not None
        groups: dict[str, Any] = {"devApp": [self.proc.pid]}
        if self.pg is not None and self.kind == "postgres":
            groups["postgres"] = self.pg.cpu
        return groups

    def profile_pids(self) -> dict[str, int]:
        assert self.proc is not None
        return {"dev": self.proc.pid}


def run_dapr(pg: Postgres, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The Dapr shape on database `dapr` of `pg`: API + daprd and one worker + daprd
    (latency, throughput, backlog), then a second worker replica (throughput, backlog).
    `args` as main's (runs, tasks, clients, latency_tasks, gap_ms, kinds, profile)."""
    url = pg.create("dapr")
    shape = DaprShape(work / "dapr", url, pg.dsn("dapr"), pg)
    try:
        shape.start()
        shape.add_worker()
        log(f"Dapr stack up: API :{shape.port}, {len(shape.workers)} worker")
        one = measure(shape, "dapr-1worker", args)
        shape.add_worker()
        log("second worker replica up")
        two = measure(shape, "dapr-2workers", args, kinds=("throughput", "backlog"))
        return {"command": shape.command, "oneWorker": one, "twoWorkers": two}
    finally:
        shape.stop()
        if pg.external:
            pg.drop("dapr")


def _interrupted(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def code_tree() -> dict[str, Any]:
    """Which code the apps ran: the repo, or a PYTHONPATH snapshot, and how it differs from HEAD."""
    tree = Path(os.environ["PYTHONPATH"].split(":")[0]) if os.environ.get("PYTHONPATH") else ROOT
    changed = []
    for path in sorted([*tree.glob("service/**/*.py"), *tree.glob("worker/**/*.py")]):
        rel = path.relative_to(tree).as_posix()
        head = subprocess.run(
            ["git", "show", f"HEAD:{rel}"], capture_output=True, cwd=ROOT, check=False
        ).stdout
        if head != path.read_bytes():
            changed.append(rel)
    return {"path": str(tree), "differsFromHead": changed}


def git_state() -> dict[str, Any]:
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout.split("\n")
    return {"commit": head, "modified": sorted(line[3:] for line in dirty if line.strip())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--latency-tasks", type=int, default=300)
    parser.add_argument("--gap-ms", type=float, default=20.0)
    parser.add_argument("--only", default="dapr,sqlite,postgres")
    parser.add_argument("--kinds", default="latency,throughput,backlog")
    parser.add_argument("--profile", type=Path, help="py-spy profiles of one extra run per shape")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    for package in ("service", "worker"):  # bytecode as an install has it (_common.compiled)
        compileall.compile_dir(ROOT / package, quiet=1)
    only = set(args.only.split(","))
    args.kinds = set(args.kinds.split(","))
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _interrupted)

    doc: dict[str, Any] = {
        "bench": "dapr",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join([".venv/bin/python", *sys.argv]),
        "daprd": os.environ.get("OPS_DAPRD", "(scripts/build-dapr.sh)"),
        "machine": machine(),
        "git": git_state(),
        "code": code_tree(),
        "nice": os.nice(0),
        "params": {
            "runs": args.runs,
            "tasks": args.tasks,
            "clients": args.clients,
            "latencyTasks": args.latency_tasks,
            "gapMs": args.gap_ms,
        },
        "aims": AIMS,
        "results": {},
    }
    work = Path(tempfile.mkdtemp(prefix="bench-dapr-"))
    work.chmod(0o755)
    pg = Postgres(work).start()
    try:
        doc["postgres"] = pg.settings()
        if "dapr" in only:
            doc["results"]["dapr"] = run_dapr(pg, work, args)
        for kind in ("sqlite", "postgres"):
            if kind not in only:
                continue
            url = pg.create(f"embedded_{kind}") if kind == "postgres" else ""
            emb = EmbeddedShape(work, kind, pg, url)
            try:
                emb.start()
                log(f"embedded ({kind}) up on :{emb.port}")
                doc["results"][f"embedded-{kind}"] = {
                    "command": emb.command,
                    **measure(emb, f"embedded-{kind}", args),
                }
            finally:
                emb.stop()
    finally:
        pg.stop()
        if os.environ.get("BENCH_KEEP") is None:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work}")
    doc["machine"]["loadavgAtEnd"] = Path("/proc/loadavg").read_text().split()[:3]
    doc["summary"] = summary(doc)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(doc, indent=2) + "\n")
    log(f"wrote {args.output}")
    print(json.dumps(doc["summary"]), flush=True)


def summary(doc: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers: latency p50/p99 and push/poll, tasks/s per shape."""

    def pick(block: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if "startP99ms" in block.get("latency", {}):
            lat = block["latency"]
            out.update(
                latencyP50ms=lat["startP50ms"],
                latencyP99ms=lat["startP99ms"],
                latencyDispatch=lat["dispatch"],
            )
        for kind in ("throughput", "backlog"):
            if "tasksPerSecond" in block.get(kind, {}):
                out[f"{kind}TasksPerSecond"] = block[kind]["tasksPerSecond"]
        if "createsPerSecond" in block.get("throughput", {}):
            out["createsPerSecond"] = block["throughput"]["createsPerSecond"]
        return out

    r = doc["results"]
    out: dict[str, Any] = {}
    if "dapr" in r:
        out["dapr-1worker"] = pick(r["dapr"]["oneWorker"])
        out["dapr-2workers"] = pick(r["dapr"]["twoWorkers"])
    for kind in ("sqlite", "postgres"):
        if f"embedded-{kind}" in r:
            out[f"embedded-{kind}"] = pick(r[f"embedded-{kind}"])
    return out


if __name__ == "__main__":
    main()
