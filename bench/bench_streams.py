"""Live streams under load: N stream clients on one API process while tasks run.

    .venv/bin/python bench/bench_streams.py --db sqlite|postgres [--clients 200] [--tasks 200]
        [--gap-ms 20]

The embedded mode (`common-ops dev`: API + worker in one process). Phase 1: one client creates
`noop` tasks `gap` apart with no stream open (create latency, send -> 201). Phase 2: `clients`
connections follow `GET /tasks/stream?taskType=noop` (each first gets its snapshot), then the
same creates run again. Phase 3: the streams closed, the creates once more. The ratio divides
phase 2's p99 by that of phases 1 and 3 together, so a drift of the machine or of the growing
tables during the run weighs on both sides (phase 1 alone against phase 2 varied 0.86-1.61x
between identical runs with streams that received nothing). Every event a stream client
receives is timed against its `at` (the time the change's transaction stamped, before it
committed): the event latency. Reported: create p50/p99 without and with the streams (and
their ratio), event latency p50/p99/max, and the events received against those expected (3
per task per client: created, started, completed).

The stream clients run in a child process of their own (`--follow PORT`): in the creating
client's event loop, reading 120,000 events would delay the creates' own answers, and the
ratio would measure the load generator instead of the service.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import uvloop
from _common import (
    Connection,
    Meter,
    Server,
    create_request,
    database,
    emit,
    fresh,
    log,
    machine,
    percentile,
    profiled,
    workdir,
)

STREAM = "/api/v1/operations/tasks/stream?taskType={}"
#: The start of a change's data (`{"type":…,"at":…,"task":…}`): the client reads its type and
#: time without parsing the task (120,000 `json.loads` of a task took the clients' process most
#: of a core, on the 2 cores the service under test runs on).
_HEAD = re.compile(rb' ?\{"type":"([^"]+)","at":"([^"]+)"')
USER = "bench"


async def creates(port: int, count: int, gap: float) -> list[float]:
    """`count` creates `gap` apart on one keep-alive connection; each one's latency."""
    conn = await Connection.open(port)
    raw = create_request(USER)
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    latencies = []
    try:
        for _ in range(count):
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at += gap
            start = time.perf_counter()
            status, body = await conn.send(raw)
            latencies.append(time.perf_counter() - start)
            if status != 201:
                raise RuntimeError(f"create answered {status}: {body[:300]!r}")
    finally:
        await conn.close()
    return latencies


class StreamClient:
    """One SSE connection, its `data:` lines (the chunk-size lines of the chunked body are
    skipped: they never start with `data:`; each chunk holds whole events)."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        #: event type (`operations.task.started` …) -> its latencies
        self.by_type: dict[str, list[float]] = {}
        self.snapshot = asyncio.Event()
        self.events = 0
        self._task: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self, port: int, task_type: str) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        self._writer = writer
        headers = {"X-User-ID": USER, "Accept": "text/event-stream"}
        raw = Connection.request("GET", STREAM.format(task_type), headers)
        writer.write(raw)
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"stream answered {head[:200]!r}")
        self._task = asyncio.create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        """Each read of the socket is timed once, as it returns, and its lines parsed after:
        timing each line as it was parsed put the client's own parsing into the latency (a
        read with 80 events for each of 200 streams took this process ~100 ms to parse)."""
        pending = b""
        while chunk := await reader.read(1 << 16):
            received = time.time()
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                if line.startswith(b"data:"):
                    self._event(line, received)

    def _event(self, line: bytes, received: float) -> None:
        head = _HEAD.match(line, 5)
        if head is None:  # the snapshot (or an unexpected event: then it fails here)
            if json.loads(line[5:])["type"] == "snapshot":
                self.snapshot.set()
                return
            raise RuntimeError(f"unexpected event {line[:200]!r}")
        self.events += 1
        latency = received - datetime.fromisoformat(head[2].decode()).timestamp()
        self.latencies.append(latency)
        self.by_type.setdefault(head[1].decode().rsplit(".", 1)[-1], []).append(latency)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task


def stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "p50ms": round(1000 * percentile(values, 50), 3),
        "p99ms": round(1000 * percentile(values, 99), 3),
        "maxms": round(1000 * max(values), 3),
    }


async def follow(port: int, clients: int, task_type: str) -> None:
    """The child: open `clients` streams, then obey the parent's lines on stdin (`mark`: count
    from now; `stop`: close and print what was received since the mark as JSON)."""
    streams = [StreamClient() for _ in range(clients)]
    for client in streams:
        await client.open(port, task_type)
    await asyncio.wait_for(asyncio.gather(*(c.snapshot.wait() for c in streams)), 60)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print("ready", flush=True)
    while command := (await reader.readline()).strip():
        if command == b"mark":
            for client in streams:
                client.events, client.latencies, client.by_type = 0, [], {}
            print("marked", flush=True)
        elif command == b"stop":
            break
    for client in streams:
        await client.close()
    events = [latency for c in streams for latency in c.latencies]
    by_type: dict[str, list[float]] = {}
    for client in streams:
        for name, values in client.by_type.items():
            by_type.setdefault(name, []).extend(values)
    received = {
        "events": sum(c.events for c in streams),
        "latencies": events,
        "byType": by_type,
        "cpuSeconds": round(time.process_time(), 2),
    }
    print(json.dumps(received), flush=True)


class Followers:
    """The child process holding the stream clients."""

    def __init__(self, port: int, clients: int, task_type: str) -> None:
        command = [sys.executable, __file__, "--follow", str(port), "--clients", str(clients)]
        command += ["--follow-type", task_type]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self._expect("ready")

    def _say(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def _expect(self, word: str) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if word and not line.startswith(word):
            raise RuntimeError(f"stream clients said {line!r}, not {word!r}")
        return line

    def mark(self) -> None:
        self._say("mark")
        self._expect("marked")

    def stop(self) -> dict[str, object]:
        self._say("stop")
        received: dict[str, object] = json.loads(self._expect(""))
        self.process.wait(30)
        return received


def _user_system(pid: int) -> tuple[float, float]:
    """A process's user and system CPU seconds so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


async def run(
    port: int, clients: int, tasks: int, gap: float, task_type: str, server_pid: int
) -> dict[str, object]:
    await creates(port, 20, gap)  # warm-up
    cpu = [_user_system(server_pid)]
    alone = await creates(port, tasks, gap)
    cpu.append(_user_system(server_pid))
    await asyncio.sleep(1.0)
    followers = await asyncio.to_thread(Followers, port, clients, task_type)
    await asyncio.sleep(1.0)  # the warm-up's and phase 1's late events arrive, uncounted
    await asyncio.to_thread(followers.mark)
    cpu.append(_user_system(server_pid))
    with_streams = await creates(port, tasks, gap)
    cpu.append(_user_system(server_pid))
    await asyncio.sleep(2.0)  # the last tasks complete and their events arrive
    received = await asyncio.to_thread(followers.stop)
    await asyncio.sleep(1.0)  # the streams' connections close
    cpu.append(_user_system(server_pid))
    after = await creates(port, tasks, gap)  # alone again: the ratio's baseline is both phases
    cpu.append(_user_system(server_pid))
    events = received["latencies"]
    assert isinstance(events, list)
    by_type = received["byType"]
    assert isinstance(by_type, dict)
    baseline = alone + after
    ratio = percentile(with_streams, 99) / percentile(baseline, 99)
    return {
        "clients": clients,
        "followType": task_type,
        "tasks": tasks,
        "createAlone": stats(baseline),
        "createAloneBefore": stats(alone),
        "createAloneAfter": stats(after),
        "createWithStreams": stats(with_streams),
        "createP99Ratio": round(ratio, 3),
        "eventLatency": stats(events),
        "eventLatencyByType": {name: stats(values) for name, values in sorted(by_type.items())},
        "eventsReceived": received["events"],
        "streamClientsCpuSeconds": received["cpuSeconds"],
        "eventsExpected": 3 * tasks * clients,
        # the server's CPU in each phase's creates (alone, with the streams, alone again): what
        # the streams cost is the middle one less the others' mean
        "serverCpuSecondsByPhase": [round(sum(cpu[i + 1]) - sum(cpu[i]), 2) for i in (0, 2, 4)],
        # of which the kernel's (system time: the socket writes to the streams, among others)
        "serverSystemCpuSecondsByPhase": [round(cpu[i + 1][1] - cpu[i][1], 2) for i in (0, 2, 4)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--gap-ms", type=float, default=20.0)
    parser.add_argument(
        "--batch-ms", type=float, help="OPS_STREAM_BATCH_SECONDS for the server, in ms"
    )
    parser.add_argument(
        "--shape",
        choices=["embedded", "split"],
        default="embedded",
        help="embedded: one `common-ops dev`; split (PostgreSQL): an API process and a worker "
        "process, as deployed (the streams on the API process)",
    )
    parser.add_argument(
        "--follow-type",
        default="noop",
        help="the task type the streams follow (another, e.g. diagnostics: streams that are "
        "open but receive nothing)",
    )
    parser.add_argument(
        "--profile", type=Path, help="py-spy the server process (raw format) into this file"
    )
    parser.add_argument("--follow", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.follow:
        uvloop.run(follow(args.follow, args.clients, args.follow_type))
        return
    env = {"OPS_STREAM_MAX_CLIENTS": str(args.clients + 10)}
    if args.batch_ms is not None:
        env["OPS_STREAM_BATCH_SECONDS"] = str(args.batch_ms / 1000)
    if args.shape == "split" and args.db != "postgres":
        parser.error("--shape split needs --db postgres (the processes share the database)")
    with (
        workdir("bench-streams-") as work,
        database(args.db, work) as db,
        contextlib.ExitStack() as servers,
    ):
        command = "dev" if args.shape == "embedded" else "api"
        server = servers.enter_context(Server(command, db, work, env=env))
        metered: dict[str, int | Callable[[], float]] = {command: server.pid}
        if args.shape == "split":
            metered["worker"] = servers.enter_context(Server("worker", db, work)).pid
        fresh(db)
        log(f"{command} pid {server.pid} on port {server.port} ({db.kind}, {args.shape})")
        with Meter(metered) as meter, profiled(server.pid, args.profile):
            result = uvloop.run(
                run(
                    server.port,
                    args.clients,
                    args.tasks,
                    args.gap_ms / 1000,
                    args.follow_type,
                    server.pid,
                )
            )
        result.update(meter.result)
        log(f"{result}")
        command = server.command
    emit(
        {
            "bench": "streams",
            "db": db.kind,
            "machine": machine(),
            "server": command,
            "gapMs": args.gap_ms,
            "shape": args.shape,
            **result,
        }
    )


if __name__ == "__main__":
    main()
