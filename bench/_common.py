"""Shared helpers of the benchmarks: databases, server processes, a lean HTTP client, stats.

Every benchmark starts what it needs on free loopback ports and stops it afterwards:
SQLite is a file in a temporary directory; PostgreSQL is a dedicated cluster started with
`scripts/postgres.sh start <port> <dir>` (fsync on: no `fast` flag) and stopped at exit.
"""

from __future__ import annotations

import asyncio
import compileall
import contextlib
import functools
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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = ROOT / ".venv" / "bin"
COMMON_OPS = str(VENV_BIN / "common-ops")
PG_SCRIPT = str(ROOT / "scripts" / "postgres.sh")
PG_USER_URL = "postgresql+asyncpg://postgres@127.0.0.1:{port}/{db}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence: the ceil(q/100 * n)-th
    smallest value, exactly as ../shared/peers/common.py computes it (so ratios compare alike)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def emit(result: dict[str, Any]) -> None:
    """The one JSON line a benchmark prints on stdout."""
    print(json.dumps(result, sort_keys=True), flush=True)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- machine ----------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = None
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memGiB": mem_gib,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def cpu_seconds(pid: int, *, reaped: bool = False) -> float:
    """User + system CPU time of one process so far; with `reaped`, plus that of its children
    that have exited and been waited for (0.0 once the process is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if reaped:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """Pids of the live children of `pid`."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry.name))
    return out


def postmaster_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def tree_cpu(pid: int) -> Callable[[], float]:
    """CPU seconds of a process and its live children so far (`common-ops api --workers N`:
    a supervisor and N server processes). A Meter group."""
    return lambda: cpu_seconds(pid, reaped=True) + sum(cpu_seconds(p) for p in children(pid))


def postgres_cpu(data_dir: Path) -> Callable[[], float]:
    """CPU seconds of a whole PostgreSQL cluster so far: the postmaster, its live processes
    (backends, checkpointer, WAL writer, autovacuum) and the backends that exited (the
    postmaster reaps them, so their time moves to its children's account). A Meter group."""

    def read() -> float:
        master = postmaster_pid(data_dir)
        if master is None:
            return 0.0
        return cpu_seconds(master, reaped=True) + sum(cpu_seconds(p) for p in children(master))

    return read


def rss_bytes(pid: int) -> int | None:
    """Resident set size of a live process (VmRSS), None once it is gone."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return None


def _system_jiffies() -> tuple[int, int]:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values[:8]) - idle, sum(values[:8])


class Meter:
    """CPU used by the watched processes and by the whole machine over a block of time.

    `groups` maps a name to a pid or to a callable returning CPU seconds so far (e.g.
    `postgres_cpu(dir)`). The machine may be shared (other jobs running): `otherCores` is
    `machineBusyCores` minus what the watched processes and this load generator used, i.e.
    how much of the cores something else took during the measurement.
    """

    def __init__(self, groups: dict[str, int | Callable[[], float]]) -> None:
        self.groups = groups
        self.result: dict[str, float] = {}

    def _read(self) -> dict[str, float]:
        return {
            name: group() if callable(group) else cpu_seconds(group)
            for name, group in self.groups.items()
        }

    def __enter__(self) -> Meter:
        self._cpu = self._read()
        self._self = time.process_time()
        self._busy, self._total = _system_jiffies()
        self._wall = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self._wall
        busy, total = _system_jiffies()
        cores = os.cpu_count() or 1
        now = self._read()
        self.result = {
            f"{name}CpuSeconds": round(now[name] - self._cpu[name], 3) for name in self.groups
        }
        self.result["loadGeneratorCpuSeconds"] = round(time.process_time() - self._self, 3)
        self.result["machineBusyCores"] = round(
            cores * (busy - self._busy) / max(1, total - self._total), 2
        )
        self.result["wallSeconds"] = round(wall, 3)
        ours = sum(now[n] - self._cpu[n] for n in self.groups)
        ours += self.result["loadGeneratorCpuSeconds"]
        self.result["otherCores"] = round(
            max(0.0, self.result["machineBusyCores"] - ours / max(wall, 1e-9)), 2
        )


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


# -- databases --------------------------------------------------------------------------------
@dataclass
class Database:
    kind: str  # sqlite | postgres
    url: str
    info: dict[str, Any]


def _pg_bin() -> Path:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin")):
        if (candidate / "psql").exists():
            return candidate
    raise RuntimeError("no PostgreSQL binaries found; run scripts/postgres.sh once")


def _psql(port: int, sql: str, db: str = "postgres") -> str:
    out = subprocess.run(
        [
            str(_pg_bin() / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "postgres",
            "-d",
            db,
            "-At",
            "-c",
            sql,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def track_statements() -> None:
    """Load pg_stat_statements into the clusters this process starts from now on (see
    `top_statements`)."""
    extra = os.environ.get("PG_EXTRA_OPTS", "")
    os.environ["PG_EXTRA_OPTS"] = (
        f"{extra} -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all"
    )


def statements_reset(db: Database) -> None:
    """Start counting statements afresh (after `track_statements`)."""
    name = db.info.get("dbname", "bench")
    _psql(db.info["port"], "CREATE EXTENSION IF NOT EXISTS pg_stat_statements", db=name)
    _psql(db.info["port"], "SELECT pg_stat_statements_reset()", db=name)


def top_statements(db: Database, n: int) -> list[dict[str, Any]]:
    """Where the server's time went since `statements_reset`: the `n` statements with the most
    execution time (calls, rows, ms in all and a call, share of all statements' time), logged
    and returned. Lock waits count as time (pg_advisory_xact_lock)."""
    rows = _psql(
        db.info["port"],
        "SELECT json_agg(s) FROM (SELECT calls, rows, round(total_exec_time::numeric, 1) AS ms,"
        " round((total_exec_time / calls)::numeric, 3) AS ms_per_call,"
        " round((100 * total_exec_time / sum(total_exec_time) OVER ())::numeric, 1) AS pct,"
        " left(regexp_replace(query, '\\s+', ' ', 'g'), 160) AS query"
        " FROM pg_stat_statements WHERE calls > 0 ORDER BY total_exec_time DESC) s",
        db=db.info.get("dbname", "bench"),
    )
    listed: list[dict[str, Any]] = json.loads(rows or "[]")
    for row in listed[:n]:
        log(f"  {row['pct']:>5}% {row['ms']:>9} ms {row['calls']:>6}x {row['query']}")
    return listed[:n]


def migrate(url: str) -> None:
    subprocess.run(
        [COMMON_OPS, "migrate", "--database-url", url],
        check=True,
        capture_output=True,
        env=_env({}),
    )


PG_SETTINGS = (
    "server_version",
    "fsync",
    "synchronous_commit",
    "wal_sync_method",
    "full_page_writes",
    "shared_buffers",
    "max_connections",
)


@dataclass
class Cluster:
    """A PostgreSQL cluster that is already running (e.g. ../shared/peers' on 127.0.0.1:5440):
    `database()` then only creates (and afterwards drops) its own database in it."""

    port: int
    data_dir: Path
    dbname: str = "commonops_bench"


def checkpoint(db: Database) -> None:
    """CHECKPOINT the PostgreSQL cluster (as ../shared/peers/run_all.sh does before each step),
    so one step's dirty buffers are not written during the next one's measurement."""
    if db.kind == "postgres":
        _psql(db.info["port"], "CHECKPOINT")


@contextlib.contextmanager
def database(kind: str, workdir: Path, cluster: Cluster | None = None) -> Iterator[Database]:
    """A fresh, migrated database of `kind`. PostgreSQL: a cluster of our own that lives only
    inside the block (scripts/postgres.sh, fsync on), or a database of our own inside the
    running `cluster`, dropped at the end. `info` carries the port, database name, data
    directory (for `postgres_cpu`) and the server's durability settings."""
    if kind == "sqlite":
        path = workdir / "operations.db"
        url = f"sqlite+aiosqlite:///{path}"
        migrate(url)
        yield Database(kind, url, {"file": str(path), "journal": "WAL, synchronous=NORMAL"})
        return
    if kind != "postgres":
        raise ValueError(f"unknown database {kind!r}")
    if cluster is None:
        port, pg_dir, dbname = free_port(), workdir / "pg", "bench"
        log(f"starting PostgreSQL (fsync on) on 127.0.0.1:{port} in {pg_dir}")
        subprocess.run([PG_SCRIPT, "start", str(port), str(pg_dir)], check=True)
    else:
        port, pg_dir, dbname = cluster.port, cluster.data_dir, cluster.dbname
        log(f"using the running PostgreSQL on 127.0.0.1:{port} ({pg_dir}), database {dbname}")
        _psql(port, f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
    try:
        _psql(port, f"CREATE DATABASE {dbname}")
        settings = {name: _psql(port, f"SHOW {name}") for name in PG_SETTINGS}
        url = PG_USER_URL.format(port=port, db=dbname)
        migrate(url)
        info = {"port": port, "dbname": dbname, "dataDir": str(pg_dir), **settings}
        info["cluster"] = "own (scripts/postgres.sh)" if cluster is None else "existing"
        yield Database(kind, url, info)
    finally:
        if cluster is None:
            subprocess.run([PG_SCRIPT, "stop", str(pg_dir)], check=False)
            log("PostgreSQL stopped")
        else:
            with contextlib.suppress(subprocess.CalledProcessError):
                _psql(port, f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


TASK_TABLES = "task_events, task_logs, task_attempts, outbox, job_runs, tasks"


def fresh(db: Database, tables: str = TASK_TABLES) -> None:
    """Empty `tables` (every task table by default) between runs on the same database."""
    if db.kind == "postgres":
        name = db.info.get("dbname", "bench")
        _psql(db.info["port"], f"TRUNCATE {tables} RESTART IDENTITY", db=name)
        _psql(db.info["port"], "VACUUM ANALYZE", db=name)
        return
    import sqlite3

    with contextlib.closing(sqlite3.connect(db.info["file"], timeout=30)) as conn:
        for table in tables.split(", "):
            conn.execute(f"DELETE FROM {table}")
        conn.commit()
        conn.execute("VACUUM")


# -- server processes -------------------------------------------------------------------------
def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPS_")}
    # OPS_GRPC_PORT=0: a benchmark of REST serves no gRPC (and two runs never share port 9000)
    env.update(
        {"OPS_LOG_LEVEL": "warning", "OPS_ENVIRONMENT": "dev", "OPS_GRPC_PORT": "0", **extra}
    )
    return env


@functools.cache
def compiled() -> None:
    """Compile the project's modules to bytecode, as installing a package does (pip compiles
    its modules; the peers run from such an install). Ours is installed editable, and this
    machine sets PYTHONDONTWRITEBYTECODE: every server start compiled its ~170 modules from
    source again (0.16 s of the worker's 1.2 s start-up, measured). compileall writes the
    caches whatever that variable says; Python reads them whatever it says."""
    for package in ("service", "worker"):
        compileall.compile_dir(ROOT / package, quiet=1)


class Server:
    """`common-ops <command> --port P` as a child process, stopped with SIGINT (graceful)."""

    def __init__(
        self,
        command: str,
        db: Database,
        workdir: Path,
        *,
        env: dict[str, str] | None = None,
        prefix: Sequence[str] = (),
        args: Sequence[str] = (),
    ) -> None:
        compiled()
        self.port = free_port()
        extra = {
            "OPS_DATABASE_URL": db.url,
            "OPS_DATA_DIR": str(workdir / f"data-{command}"),
            "OPS_MIGRATE_ON_START": "true" if db.kind == "sqlite" else "false",
            **(env or {}),
        }
        self.argv = [*prefix, COMMON_OPS, command, "--port", str(self.port), *args]
        self.log_path = workdir / f"{command}-{self.port}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            self.argv, env=_env(extra), stdout=self._log, stderr=subprocess.STDOUT
        )
        self.command = " ".join(f"{k}={v}" for k, v in extra.items()) + " " + " ".join(self.argv)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.argv} exited: {self.log_path.read_text()[-2000:]}")
            if self.live():
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.argv} not ready after {timeout}s")

    def live(self) -> bool:
        """Does it answer GET /health/live with 200 (its HTTP server is up)?"""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return s.recv(64).startswith(b"HTTP/1.1 200")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def __enter__(self) -> Server:
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- a lean keep-alive HTTP/1.1 client --------------------------------------------------------
class Connection:
    """One keep-alive connection; the load generator must cost far less than the server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    @staticmethod
    def request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
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


CREATE_PATH = "/api/v1/operations/tasks"
NOOP_BODY = json.dumps({"taskType": "noop"}).encode()


def create_request(user: str = "bench") -> bytes:
    return Connection.request("POST", CREATE_PATH, {"X-User-ID": user}, NOOP_BODY)


# -- profiling --------------------------------------------------------------------------------
@contextlib.contextmanager
def profiled(pid: int, out: Path | None, *, rate: int = 250) -> Iterator[None]:
    """Sample `pid` with py-spy (when `out` is set) while the block runs."""
    if out is None:
        yield
        return
    spy = shutil.which("py-spy", path=str(VENV_BIN)) or shutil.which("py-spy")
    if spy is None:
        raise RuntimeError("py-spy is not installed: .venv/bin/pip install py-spy")
    out.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(rate),
            "--format",
            "raw",
            "--gil",
            "--output",
            str(out),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)  # let py-spy attach
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        log(f"profile written to {out}")
