"""What the client prints: tables and messages for people, JSON for scripts; exit codes."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

#: Exit codes (README, "The CLI"): 2 is a usage error (typer's own).
OK = 0
ERROR = 1  # an error answer of the API, an unreachable API, a checksum that does not match
FAILED = 3  # the task failed
CANCELLED = 4  # the task was cancelled (or deleted while watched)

TERMINAL = {"completed": OK, "failed": FAILED, "cancelled": CANCELLED}

#: Piped (not a terminal), a table is as wide as its lines need (up to PIPE_WIDTH) rather than
#: 80 columns with its ids cut short: what a pipe gets is whole.
PIPE_WIDTH = 240
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else PIPE_WIDTH)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def problem(status: int, body: dict[str, Any], *, as_json: bool) -> None:
    """An error answer with its fields: type, title, status, detail and each field error."""
    if as_json:
        emit_json({"error": body, "status": status})
        return
    title = body.get("title") or "error"
    err.print(f"[bold red]error {status}[/]: {title}")
    if body.get("detail"):
        err.print(f"  detail: {body['detail']}")
    if body.get("type"):
        err.print(f"  type: {body['type']}")
    for item in body.get("errors") or []:
        if isinstance(item, dict):
            err.print(f"  {item.get('field', '?')}: {item.get('reason') or item.get('message')}")


def task_table(items: list[dict[str, Any]]) -> None:
    table = Table("id", "type", "entity", "status", "progress", "created", box=None)
    for t in items:
        table.add_row(
            str(t["id"]),
            str(t.get("taskType")),
            str(t.get("entityType") or ""),
            str(t.get("status")),
            f"{t.get('progress', 0)}%",
            str(t.get("createdAt", ""))[:19],
        )
    out.print(table)


def task_detail(task: dict[str, Any]) -> None:
    keys = (
        "id",
        "name",
        "taskType",
        "entityType",
        "status",
        "progress",
        "totalItems",
        "processedItems",
        "succeededItems",
        "failedItems",
        "requestedBy",
        "createdAt",
        "startedAt",
        "completedAt",
        "errorMessage",
        "retryCount",
        "outputFileId",
        "reportFileId",
    )
    for key in keys:
        value = task.get(key)
        if value is not None:
            out.print(f"[bold]{key}[/]: {value}")
    if task.get("params"):
        out.print(f"[bold]params[/]: {json.dumps(task['params'])}")
    if task.get("result"):
        out.print(f"[bold]result[/]: {json.dumps(task['result'])}")


def generic_table(items: list[dict[str, Any]], columns: list[str]) -> None:
    """A table of `columns`; an id is never cut short (it is what the next command takes)."""
    table = Table(box=None)
    for column in columns:
        if column == "id":
            widest = max((len(str(item.get("id", ""))) for item in items), default=2)
            table.add_column(column, no_wrap=True, min_width=widest)
        else:
            table.add_column(column, overflow="fold")
    for item in items:
        table.add_row(*(str(item.get(c, "")) for c in columns))
    out.print(table)
