"""Bulk import parsing and export writing, without a database: rows per second and peak RSS.

    .venv/bin/python bench/bench_bulk_parse.py [--rows 200000] [--runs 3] [--only NAME ...]

Each scenario runs in a fresh child process so its peak RSS is its own. Import scenarios
read a generated products file from disk and validate every row in batches of 1000
(`pipeline.Batches`, what an import handler runs);
export scenarios write product rows from a small cycled pool (so the source costs almost
nothing) to a file on disk. stdlib_csv_baseline parses the import file with bare csv.reader
and dict(zip()), the floor under any Python CSV import: a yardstick of the machine.

CPU seconds are reported besides wall seconds because a shared machine's wall clock says
more about its neighbours than about this code. One process uses one core: the aim
(>= 100k rows/s import, >= 200k rows/s export on 2 cores, peak RSS <= 150 MB) leaves the
second core to the sink and the event loop. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from decimal import Decimal
from itertools import cycle, islice
from pathlib import Path
from typing import Any

from service.bulk.pipeline import Batches
from service.bulk.readers import open_reader
from service.bulk.schemas import SCHEMAS
from service.bulk.sniffing import Format
from service.bulk.writers import open_writer

SCHEMA = SCHEMAS["product"]
XLSX_ROWS = 20_000  # openpyxl is an order of magnitude slower; a smaller file says as much

#: name -> (direction, format, gzip)
SCENARIOS: dict[str, tuple[str, Format, bool]] = {
    "stdlib_csv_baseline": ("baseline", "csv", False),
    "import_csv": ("import", "csv", False),
    "import_csv_gzip": ("import", "csv", True),
    "import_jsonl": ("import", "jsonl", False),
    "import_xlsx": ("import", "xlsx", False),
    "export_csv": ("export", "csv", False),
    "export_csv_gzip": ("export", "csv", True),
    "export_jsonl": ("export", "jsonl", False),
    "export_xlsx": ("export", "xlsx", False),
}


def product_row(i: int) -> dict[str, Any]:
    return {
        "sku": f"SKU-{i:08d}",
        "name": f"Trail running shoe {i % 977}",
        "description": "Light, breathable, with a grippy sole." if i % 3 == 0 else None,
        "price": Decimal(f"{i % 5000}.{i % 100:02d}"),
        "currency": ("EUR", "USD", "GBP")[i % 3],
        "stock": i % 250,
        "category": ("shoes", "apparel", "outdoor", "accessories")[i % 4],
        "attributes": {"color": "red", "size": 42} if i % 2 else {},
    }


def rows(count: int) -> Iterator[dict[str, Any]]:
    pool = [product_row(i) for i in range(1000)]
    for i, row in enumerate(islice(cycle(pool), count)):
        yield {**row, "sku": f"SKU-{i:08d}"}


def make_file(path: Path, fmt: Format, gzip: bool, count: int) -> None:
    with path.open("wb") as out:
        writer = open_writer(out, fmt, SCHEMA.columns, gzip=gzip)
        writer.write_rows(rows(count))
        writer.close()


def run_import(path: Path) -> dict[str, Any]:
    good = bad = 0
    with path.open("rb") as upload:
        started, cpu = time.perf_counter(), time.process_time()
        with open_reader(upload, filename=path.name) as reader:
            for batch in Batches(reader, SCHEMA):
                good += len(batch.candidates)
                bad += len({error.row for error in batch.errors})
        return _timing(good + bad, started, cpu) | {"valid": good, "invalid": bad}


def run_stdlib_baseline(path: Path) -> dict[str, Any]:
    """The same file through bare csv.reader + dict(zip()): what this machine does right now."""
    with path.open(newline="", encoding="utf-8") as text:
        started, cpu = time.perf_counter(), time.process_time()
        rows = csv.reader(text)
        header = next(rows)
        count = sum(1 for row in rows if dict(zip(header, row, strict=True)))
        return _timing(count, started, cpu)


def run_export(path: Path, fmt: Format, gzip: bool, count: int) -> dict[str, Any]:
    pool = [product_row(i) for i in range(1000)]
    with path.open("wb") as out:
        started, cpu = time.perf_counter(), time.process_time()
        writer = open_writer(out, fmt, SCHEMA.columns, gzip=gzip)
        written = writer.write_rows(islice(cycle(pool), count))
        writer.close()
    return _timing(written, started, cpu) | {"bytes": path.stat().st_size}


def _timing(count: int, started: float, cpu: float) -> dict[str, Any]:
    wall = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu
    return {
        "rows": count,
        "wallSeconds": round(wall, 3),
        "cpuSeconds": round(cpu_seconds, 3),
        "rowsPerSecondWall": round(count / wall),
        "rowsPerSecondCpu": round(count / cpu_seconds),
    }


def child(name: str, count: int, workdir: Path) -> dict[str, Any]:
    direction, fmt, gzip = SCENARIOS[name]
    count = min(count, XLSX_ROWS) if fmt == "xlsx" else count
    path = workdir / f"{name}.{fmt}{'.gz' if gzip else ''}"
    if direction != "export":
        make_file(path, fmt, gzip, count)
        baseline = _peak_rss_mb()
        result = run_import(path) if direction == "import" else run_stdlib_baseline(path)
    else:
        baseline = _peak_rss_mb()
        result = run_export(path, fmt, gzip, count)
    return result | {"peakRssMB": _peak_rss_mb(), "peakRssBeforeMB": baseline}


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def parent(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-bulk-") as workdir:
        for name in args.only or SCENARIOS:
            runs = [_spawn(name, args.rows, Path(workdir)) for _ in range(args.runs)]
            best = max(runs, key=lambda run: run["rowsPerSecondCpu"])
            results[name] = best | {
                "medianRowsPerSecondWall": statistics.median(r["rowsPerSecondWall"] for r in runs),
                "medianRowsPerSecondCpu": statistics.median(r["rowsPerSecondCpu"] for r in runs),
                "maxPeakRssMB": max(r["peakRssMB"] for r in runs),
            }
            print(f"{name}: {json.dumps(results[name])}", file=sys.stderr)
    return {
        "bench": "bulk_parse",
        "entity": "product",
        "aims": {"importRowsPerSecond": 100_000, "exportRowsPerSecond": 200_000, "peakRssMB": 150},
        "machine": {"python": platform.python_version(), "load1": _load()},
        "scenarios": results,
    }


def _spawn(name: str, count: int, workdir: Path) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", name, "--rows", str(count)]
    command += ["--dir", str(workdir)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def _load() -> float:
    with open("/proc/loadavg") as handle:
        return float(handle.read().split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", nargs="*", choices=sorted(SCENARIOS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.rows, Path(args.dir))))
    else:
        print(json.dumps(parent(args), sort_keys=True))


if __name__ == "__main__":
    main()
