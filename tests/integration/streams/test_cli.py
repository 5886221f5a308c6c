"""`common-ops tasks|import|export` against a real running server (API and worker embedded)."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from service.cli import full_cli

RUNNER = CliRunner()


async def run(server: str, *args: str, user: str = "alice") -> Result:
    """The CLI in a thread (the server runs in this test's event loop)."""
    env = {"OPS_CLI_API": server, "OPS_CLI_USER": user, "OPS_CLI_CONFIG": "/nonexistent"}
    return await asyncio.to_thread(RUNNER.invoke, full_cli(), list(args), env=env)


def lines(result: Result) -> list[Any]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


async def test_create_and_watch_a_task_to_completion(server: str) -> None:
    result = await run(server, "tasks", "create", "sleep", "--params", '{"seconds": 1}', "--watch")
    assert result.exit_code == 0, result.output
    assert "completed" in result.stdout


async def test_a_failed_task_exits_non_zero(server: str) -> None:
    result = await run(
        server, "tasks", "create", "fail", "--params", '{"permanent": true}', "--watch", "--json"
    )
    assert result.exit_code == 3, result.output
    events = lines(result)
    assert events[0]["taskType"] == "fail"  # the created task, then one line per event
    assert events[-1]["data"]["task"]["status"] == "failed"


async def test_list_show_cancel_retry_logs(server: str) -> None:
    sleep = ("tasks", "create", "sleep", "--json", "--params")
    created = lines(await run(server, *sleep, '{"seconds": 30}'))
    task_id = created[0]["id"]
    listed = lines(await run(server, "tasks", "list", "--type", "sleep", "--json"))[0]
    assert task_id in [t["id"] for t in listed["items"]]
    shown = lines(await run(server, "tasks", "show", task_id, "--json"))[0]
    assert shown["params"] == {"seconds": 30}

    cancelled = await run(server, "tasks", "cancel", task_id, "--json")
    assert cancelled.exit_code == 0, cancelled.output
    watched = await run(server, "tasks", "watch", task_id)
    assert watched.exit_code == 4, watched.output  # cancelled

    retried = await run(server, "tasks", "retry", task_id, "--json")
    assert retried.exit_code == 0, retried.output
    assert lines(retried)[0]["status"] in ("pending", "processing")
    await run(server, "tasks", "cancel", task_id)

    done = lines(await run(server, *sleep, '{"seconds": 0}'))
    watched = await run(server, "tasks", "watch", done[0]["id"])
    assert watched.exit_code == 0, watched.output
    logs = await run(server, "tasks", "logs", done[0]["id"], "--json")
    assert [line["message"] for line in lines(logs)[0]] == ["slept 0.0 seconds"]
    other = await run(server, "tasks", "show", task_id, user="bob")
    assert other.exit_code == 1
    assert "404" in other.stderr


async def test_problems_are_printed_with_their_fields(server: str) -> None:
    result = await run(server, "tasks", "create", "sleep", "--params", '{"seconds": -1}')
    assert result.exit_code == 1
    assert "error 422" in result.stderr
    assert "params.seconds" in result.stderr
    as_json = await run(server, "tasks", "create", "no-such-type", "--json")
    assert as_json.exit_code == 1
    body = lines(as_json)[0]
    assert body["status"] == 422
    assert body["error"]["errors"][0]["field"] == "taskType"
    usage = await run(server, "tasks", "create", "sleep", "--params", "[1]")
    assert usage.exit_code == 2


def _products(path: Path, rows: int, bad: int = 0) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["sku", "name", "price", "currency"])
    for i in range(rows):
        writer.writerow([f"CLI-{i}", f"Product {i}", f"{i}.50", "EUR"])
    for i in range(bad):
        writer.writerow([f"BAD-{i}", f"Bad {i}", "not a price", "EUR"])
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


async def test_import_a_file_then_export_it_with_its_checksum_verified(
    server: str, tmp_path: Path
) -> None:
    source = _products(tmp_path / "products.csv", rows=50, bad=2)
    dry = await run(server, "import", str(source), "--entity", "product", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    outcome = lines(dry)[-1]
    assert outcome["task"]["params"]["validateOnly"] is True
    assert outcome["task"]["failedItems"] == 2

    done = await run(server, "import", str(source), "--entity", "product", "--mode", "upsert")
    assert done.exit_code == 0, done.output
    assert "completed" in done.stdout
    assert "error report: http" in done.stdout  # two rows were refused

    target = tmp_path / "export.csv"
    exported = await run(
        server, "export", "--entity", "product", "--format", "csv", "-o", str(target), "--json"
    )
    assert exported.exit_code == 0, exported.output
    summary = lines(exported)[-1]
    data = target.read_bytes()
    assert hashlib.sha256(data).hexdigest() == summary["sha256"]
    skus = {row["sku"] for row in csv.DictReader(io.StringIO(data.decode("utf-8-sig")))}
    assert skus == {f"CLI-{i}" for i in range(50)}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"stream_keepalive_seconds": 1.0}
