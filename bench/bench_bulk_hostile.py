"""Hostile imports (issue 9 §5): what the files of the issue cost the reader, without a database.

    .venv/bin/python bench/bench_bulk_hostile.py [--only NAME ...] [--cap SECONDS]
        [--max-blank-ratio N]

Each scenario builds its file once (cached in the temp directory, built by the tests' own
`tests/unit/bulk/hostile.py`) and reads it in a fresh child process the way an import does:
`open_reader` then `pipeline.Batches` of 2,000 rows, with the maxErrors stop of the handler
(batches end at the 1,001st rejected row, then the run stops) except where a scenario
measures reading a whole sheet of rejected rows (xlsx_3m_rows). Reported: data rows read,
rejected rows, wall and CPU seconds, the growth of the child's peak RSS over its RSS before
reading (VmHWM - VmRSS from /proc/self/status), and how it ended. A run still going after
`--cap` seconds is stopped (through the reader's stop flag, so within a chunk even inside
one batch) and says so. `--max-blank-ratio 1000000000` lifts the bound on blank input, to
measure what reading it costs. Prints one JSON line.

To measure the code before a change, put its `service` first on the path:
`git archive <commit> service | tar -x -C /tmp/old && PYTHONPATH=/tmp/old python bench/...`.
"""

from __future__ import annotations

import argparse
import inspect
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT))  # after a PYTHONPATH that puts older code first

from service.bulk import streams  # noqa: E402
from service.bulk.limits import ReadLimits  # noqa: E402
from service.bulk.pipeline import Batches  # noqa: E402
from service.bulk.readers import open_reader  # noqa: E402
from service.bulk.schemas import SCHEMAS  # noqa: E402
from tests.unit.bulk import hostile  # noqa: E402

MAX_ERRORS = 1000
#: Scenarios read to the end whatever they reject: what matters is the cost of reading.
READ_WHOLE = {"xlsx_3m_rows"}


def _xlsx(build: Callable[[], Any], **parts: Any) -> Callable[[BinaryIO], object]:
    return lambda out: hostile.workbook(out, build(), **parts)


def _gzip(megabytes: int, line: bytes = b"\n", **head: bytes) -> Callable[[BinaryIO], object]:
    return lambda out: out.write(hostile.repeated_gzip(megabytes, line, **head))


JSON_ROW = b'{"sku": "A-1", "name": "Shoe", "price": "1.00", "currency": "EUR"}\n'

#: name -> (file name, how to write it, what it is)
SCENARIOS: dict[str, tuple[str, Callable[[BinaryIO], object], str]] = {
    "csv_gzip_blank_lines": (
        "blank.csv.gz",
        _gzip(256),
        "261 KB gzip, a product header and 256 MiB of blank lines (the file of the report)",
    ),
    "csv_gzip_empty_rows": (
        "commas.csv.gz",
        _gzip(256, b",,,\r\n"),
        "391 KB gzip, a header and 256 MiB of delimiter-only CRLF lines (a sheet's empty rows)",
    ),
    "csv_gzip_quoted_empty_rows": (
        "quoted.csv.gz",
        _gzip(256, b'"","","",""\r\n'),
        "521 KB gzip, a header and 256 MiB of rows of empty quoted cells, parsed one by one",
    ),
    "jsonl_gzip_blank_lines": (
        "blank.jsonl.gz",
        _gzip(256, b"  \n", head=JSON_ROW),
        "261 KB gzip, one object and 256 MiB of whitespace-only lines",
    ),
    "xlsx_empty_rows": (
        "empty-rows.xlsx",
        _xlsx(lambda: hostile.empty_rows_sheet(20_000_000)),
        "176 KB workbook, a header and 20M rows without a cell (120 MB of XML)",
    ),
    "xlsx_empty_cells": (
        "empty-cells.xlsx",
        _xlsx(lambda: hostile.empty_cells_sheet(16_384)),
        "1.1 MB workbook, 16,384 rows of 16,384 cells without a value (1 GiB of XML)",
    ),
    "csv_gzip_identical_rows": (
        "identical.csv.gz",
        _gzip(32, b"A-1,Shoe,1.00,EUR\n"),
        "legitimate: 81 KB gzip, 32 MiB of one valid product row repeated (1.9M rows, ratio 412)",
    ),
    "csv_gzip_flood": (
        "flood.csv.gz",
        lambda out: out.write(hostile.one_value_rows_gzip(3_000_000)),
        "5.9 KB gzip, 3M one-value rows: every row a row error",
    ),
    "xlsx_huge_cell": (
        "cell.xlsx",
        _xlsx(lambda: hostile.huge_cell_sheet(200_000_000)),
        "200 KB workbook, one 200 MB inline-string cell",
    ),
    "xlsx_3m_rows": (
        "rows.xlsx",
        _xlsx(lambda: hostile.many_rows_sheet(3_000_000)),
        "15 MB workbook, 3M rows, <dimension> claiming column XFD",
    ),
    "xlsx_string_table": (
        "strings.xlsx",
        _xlsx(lambda: hostile.many_rows_sheet(10), strings=hostile.string_table(2_800_000)),
        "7 MB workbook, 2.8M shared strings (63.6 MB of XML, inside the 64 MiB limit)",
    ),
    "xlsx_row_gap": (
        "gap.xlsx",
        _xlsx(lambda: hostile.far_row_sheet(1_048_576)),
        "1.6 KB workbook, one row at 1,048,576",
    ),
    "xlsx_billion_laughs": (
        "laughs.xlsx",
        _xlsx(hostile.laughing_sheet),
        "1.7 KB workbook, the billion laughs in its sheet",
    ),
}


def status(field: str) -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    raise LookupError(field)


def child(name: str, cap: float, workdir: Path, blank_ratio: int | None) -> dict[str, Any]:
    file_name, write, _ = SCENARIOS[name]
    path = workdir / file_name
    if not path.exists():
        with path.open("wb") as out:
            write(out)
    before = status("VmRSS")
    rows = rejected = valid = 0
    outcome = "read to the end"
    bounded = "max_rejected" in inspect.signature(Batches.next).parameters
    bounded = bounded and name not in READ_WHOLE
    limits: dict[str, Any] = (
        {"limits": ReadLimits(max_blank_ratio=blank_ratio)} if blank_ratio else {}
    )
    stop = streams.Stop()
    timer = threading.Timer(cap, stop.set)  # stops a read that stays inside one batch
    timer.start()
    started, cpu = time.perf_counter(), time.process_time()
    try:
        with (
            path.open("rb") as upload,
            open_reader(upload, filename=file_name, stop=stop, **limits) as reader,
        ):
            batches = Batches(reader, SCHEMAS["product"])
            while True:
                room = {"max_rejected": MAX_ERRORS + 1 - rejected} if bounded else {}
                batch = batches.next(2000, **room)
                if batch is None:
                    break
                rows = batch.last_row
                valid += len(batch.candidates)
                rejected += len({error.row for error in batch.errors})
                if bounded and rejected > MAX_ERRORS:
                    outcome = f"stopped: {rejected} rejected rows, more than maxErrors"
                    break
                if time.perf_counter() - started > cap:
                    outcome = f"still reading after {cap:.0f} s; stopped"
                    break
    except streams.Stopped:
        outcome = f"still reading after {cap:.0f} s; stopped"
    except Exception as error:
        outcome = f"{type(error).__name__}: {str(error)[:200]}"
    finally:
        timer.cancel()
    return {
        "bytes": path.stat().st_size,
        "rows": rows,
        "validRows": valid,
        "rejectedRows": rejected,
        "wallSeconds": round(time.perf_counter() - started, 2),
        "cpuSeconds": round(time.process_time() - cpu, 2),
        "peakRssGrowthMB": round(status("VmHWM") - before, 1),
        "outcome": outcome,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(SCENARIOS))
    parser.add_argument("--cap", type=float, default=120.0)
    parser.add_argument(
        "--max-blank-ratio", type=int, help="ReadLimits.max_blank_ratio (e.g. 10**9: no bound)"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.cap, Path(args.dir), args.max_blank_ratio)))
        return
    workdir = Path(tempfile.gettempdir()) / "common-ops-bench-hostile"
    workdir.mkdir(exist_ok=True)
    results: dict[str, Any] = {}
    for name in args.only or SCENARIOS:
        command = [sys.executable, __file__, "--child", name, "--cap", str(args.cap)]
        if args.max_blank_ratio:
            command += ["--max-blank-ratio", str(args.max_blank_ratio)]
        done = subprocess.run(
            [*command, "--dir", str(workdir)], check=True, capture_output=True, text=True
        )
        results[name] = {"file": SCENARIOS[name][2], **json.loads(done.stdout.splitlines()[-1])}
        print(f"{name}: {json.dumps(results[name])}", file=sys.stderr)
    print(json.dumps({"bench": "bulk_hostile", "scenarios": results}, sort_keys=True))


if __name__ == "__main__":
    main()
