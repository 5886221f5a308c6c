"""Following a task on its stream (never by polling) until it ends, with a progress bar."""

from __future__ import annotations

from typing import Any

from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from service.cli_client import output
from service.cli_client.http import Api


def follow(api: Api, task_id: str, *, as_json: bool, label: str = "") -> dict[str, Any]:
    """Follow the task's events until it completes, fails or is cancelled; return it then.

    With `as_json` each event is printed as one JSON line (for scripts); otherwise a progress
    bar on stderr and the task's log lines.
    """
    if as_json:
        return _follow(api, task_id, None, as_json=True)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=output.err, transient=False) as bar:
        return _follow(
            api, task_id, (bar, bar.add_task(label or task_id, total=100, counts="")), as_json=False
        )


def _follow(
    api: Api, task_id: str, bar: tuple[Progress, Any] | None, *, as_json: bool
) -> dict[str, Any]:
    task: dict[str, Any] = {}
    for event in api.follow(task_id):
        if as_json:
            output.emit_json({"id": event.id, "event": event.event, "data": event.data})
        if event.event == "log":
            if bar is not None:
                line = event.data["log"]
                bar[0].console.print(f"[dim]{line['level']}[/] {line['message']}")
            continue
        current = event.data.get("task")
        if not isinstance(current, dict):
            continue
        task = current
        if bar is not None:
            progress, handle = bar
            counts = f"{task.get('processedItems', 0)}/{task.get('totalItems') or '?'}"
            if task.get("failedItems"):
                counts += f" ({task['failedItems']} failed)"
            progress.update(
                handle,
                completed=task.get("progress") or 0,
                description=f"{task.get('taskType')} {task.get('status')}",
                counts=counts,
            )
        if event.event == "deleted":
            return {**task, "status": "deleted"}
        if task.get("status") in output.TERMINAL:
            return task
    return task


def exit_code(task: dict[str, Any]) -> int:
    return output.TERMINAL.get(str(task.get("status")), output.CANCELLED)
