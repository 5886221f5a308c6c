"""The client commands: tasks, import, export, schedules, templates."""

from __future__ import annotations

import functools
import hashlib
import json
import mimetypes
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

import typer

from service.cli_client import output, watching
from service.cli_client.config import ConfigError, resolve
from service.cli_client.http import Api, ApiProblem, Unreachable

tasks_app = typer.Typer(help="Create, list, follow and act on tasks.", no_args_is_help=True)
schedules_app = typer.Typer(help="Recurring schedules.", no_args_is_help=True)
templates_app = typer.Typer(help="Task templates.", no_args_is_help=True)

ApiOpt = Annotated[
    str | None, typer.Option("--api", envvar="OPS_CLI_API", help="The API's base URL")
]
UserOpt = Annotated[
    str | None, typer.Option("--user", envvar="OPS_CLI_USER", help="X-User-ID to act as")
]
RolesOpt = Annotated[
    str | None,
    typer.Option("--roles", envvar="OPS_CLI_ROLES", help="X-User-Roles, e.g. admin"),
]
TokenOpt = Annotated[
    str | None,
    typer.Option("--token", envvar="OPS_CLI_TOKEN", help="the service token (internal callers)"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="JSON output for scripts")]
TaskId = Annotated[str, typer.Argument(help="the task's id")]

F = TypeVar("F", bound=Callable[..., Any])


def _api(api: str | None, user: str | None, roles: str | None, token: str | None) -> Api:
    try:
        return Api(resolve(api, user, roles, token))
    except ConfigError as error:
        output.err.print(f"[red]config[/]: {error}")
        raise typer.Exit(2) from error


def handles_errors(command: F) -> F:
    """An API problem or an unreachable API: printed (as JSON with --json), exit 1."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("as_json"))
        try:
            return command(*args, **kwargs)
        except ApiProblem as error:
            output.problem(error.status, error.problem, as_json=as_json)
            raise typer.Exit(output.ERROR) from error
        except Unreachable as error:
            if as_json:
                output.emit_json({"error": {"detail": str(error)}})
            else:
                output.err.print(f"[red]unreachable[/]: {error}")
            raise typer.Exit(output.ERROR) from error

    return run  # type: ignore[return-value]


def _params(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except ValueError as error:
        raise typer.BadParameter(f"not JSON: {error}", param_hint="--params") from error
    if not isinstance(value, dict):
        raise typer.BadParameter("must be a JSON object", param_hint="--params")
    return value


def _finish(api: Api, task: dict[str, Any], *, watch: bool, as_json: bool) -> None:
    if not watch:
        return
    final = watching.follow(api, str(task["id"]), as_json=as_json, label=str(task["taskType"]))
    if not as_json:
        _outcome(final)
    raise typer.Exit(watching.exit_code(final))


def _outcome(task: dict[str, Any]) -> None:
    status = task.get("status")
    colour = {"completed": "green", "failed": "red"}.get(str(status), "yellow")
    output.out.print(f"[{colour}]{status}[/]: task {task.get('id')}")
    if task.get("errorMessage"):
        output.out.print(f"  error: {task['errorMessage']}")
    counts = [
        f"{k}={task[k]}"
        for k in ("totalItems", "processedItems", "succeededItems", "failedItems")
        if task.get(k) is not None
    ]
    if counts:
        output.out.print("  " + " ".join(counts))
    if task.get("result"):
        output.out.print(f"  result: {json.dumps(task['result'])}")


# ---------------------------------------------------------------- tasks


@tasks_app.command("create")
@handles_errors
def create(
    task_type: Annotated[str, typer.Argument(help="e.g. sleep, export, import")],
    entity: Annotated[str | None, typer.Option("--entity", help="entityType")] = None,
    params: Annotated[str | None, typer.Option("--params", help="params as JSON")] = None,
    name: Annotated[str | None, typer.Option("--name")] = None,
    priority: Annotated[str | None, typer.Option("--priority", help="low … urgent")] = None,
    scheduled_at: Annotated[str | None, typer.Option("--scheduled-at", help="ISO 8601")] = None,
    watch: Annotated[bool, typer.Option("--watch", help="follow it until it ends")] = False,
    api: ApiOpt = None,
    user: UserOpt = None,
    roles: RolesOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a task (and with --watch follow it; the exit code then tells how it ended)."""
    body: dict[str, Any] = {"taskType": task_type, "params": _params(params)}
    for key, value in (
        ("entityType", entity),
        ("name", name),
        ("priority", priority),
        ("scheduledAt", scheduled_at),
    ):
        if value is not None:
            body[key] = value
    with _api(api, user, roles, token) as client:
        task = client.json("POST", "/tasks", json=body)
        if as_json:
            output.emit_json(task)
        else:
            output.out.print(f"created {task['id']} ({task['status']})")
        _finish(client, task, watch=watch, as_json=as_json)


@tasks_app.command("list")
@handles_errors
def list_tasks(
    status: Annotated[str | None, typer.Option("--status", help="one or a comma list")] = None,
    task_type: Annotated[str | None, typer.Option("--type", help="taskType")] = None,
    entity: Annotated[str | None, typer.Option("--entity")] = None,
    search: Annotated[str | None, typer.Option("--search")] = None,
    page_size: Annotated[int, typer.Option("--page-size", min=1, max=100)] = 20,
    api: ApiOpt = None,
    user: UserOpt = None,
    roles: RolesOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Tasks, newest first (yours; all of them for admins)."""
    query = {
        "status": status,
        "taskType": task_type,
        "entityType": entity,
        "search": search,
        "pageSize": page_size,
    }
    with _api(api, user, roles, token) as client:
        page = client.json("GET", "/tasks", params={k: v for k, v in query.items() if v})
    if as_json:
        output.emit_json(page)
    else:
        output.task_table(page["items"])
        output.out.print(f"{len(page['items'])} of {page['total']}")


@tasks_app.command("show")
@handles_errors
def show(
    task_id: TaskId,
    api: ApiOpt = None,
    user: UserOpt = None,
    roles: RolesOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One task."""
    with _api(api, user, roles, token) as client:
        task = client.json("GET", f"/tasks/{task_id}")
    if as_json:
        output.emit_json(task)
    else:
        output.task_detail(task)


@tasks_app.command("watch")
@handles_errors
def watch(
    task_id: TaskId,
    api: ApiOpt = None,
    user: UserOpt = None,
    roles: RolesOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Follow a task on its event stream until it ends: exit 0 completed, 3 failed, 4 cancelled."""
    with _api(api, user, roles, token) as client:
        _finish(client, {"id": task_id, "taskType": "task"}, watch=True, as_json=as_json)


def _post_action(app: typer.Typer, name: str, *, path: str, doc: str, said: str) -> None:
    """Register `name ID`: POST `path` (with the quoted id) and print `said` filled with the
    answer. One definition for the commands that differ only in their path and wording."""

    def command(
        item_id: Annotated[str, typer.Argument(metavar="ID", help="its id")],
        api: ApiOpt = None,
        user: UserOpt = None,
        roles: RolesOpt = None,
        token: TokenOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        with _api(api, user, roles, token) as client:
            answer = client.json("POST", path.format(id=quote(item_id, safe="")))
        if as_json:
            output.emit_json(answer)
        else:
            output.out.print(said.format(answer=answer))

    app.command(name, help=doc)(handles_errors(command))


for _name, _action, _doc in (
    ("cancel", "cancel", "Cancel a task (a running one stops at its next progress report)."),
    ("retry", "retry", "Retry a failed or cancelled task."),
    ("run", "run", "Make a scheduled task due now (POST /tasks/{id}/run)."),
):
    _post_action(
        tasks_app,
        _name,
        path=f"/tasks/{{id}}/{_action}",
        doc=_doc,
        said=f"{_action}: {{answer[id]}} is {{answer[status]}}",
    )


@tasks_app.command("logs")
@handles_errors
def logs(
    task_id: TaskId,
    level: Annotated[str | None, typer.Option("--level", help="debug|info|warning|error")] = None,
    api: ApiOpt = None,
    user: UserOpt = None,
    roles: RolesOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A task's log lines, oldest first (every page)."""
    lines: list[dict[str, Any]] = []
    with _api(api, user, roles, token) as client:
        page_number = 1
        while True:
            query: dict[str, Any] = {"page": page_number, "pageSize": 500}
            if level:
                query["level"] = level
            page = client.json("GET", f"/tasks/{task_id}/logs", params=query)
            lines += page["items"]
            if len(lines) >= page["total"] or not page["items"]:
                break
            page_number += 1
    if as_json:
        output.emit_json(lines)
        return
    for line in lines:
        output.out.print(f"{str(line['createdAt'])[:23]} {line['level']:<7} {line['message']}")


# ---------------------------------------------------------------- import / export


def _digest(path: Path) -> tuple[int, str]:
    sha = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            sha.update(chunk)
            size += len(chunk)
    return size, sha.hexdigest()


def import_file(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    entity: Annotated[str, typer.Option("--entity", help="product, customer, order, inventory")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="validate only (counts)")] = False,
    mode: Annotated[str | None, typer.Option("--mode", help="insert or upsert")] = None,
    file_format: Annotated[str | None, typer.Option("--format", help="csv, jsonl, xlsx")] = None,
    watch: Annotated[bool, typer.Option("--watch/--no-watch", help="follow it to the end")] = True,
    api: ApiOpt = None,
    user: UserOpt = None,
    roles: RolesOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Upload FILE as an import (create → PUT the bytes → confirm), then follow it."""
    params: dict[str, Any] = {}
    if mode:
        params["mode"] = mode
    if file_format:
        params["format"] = file_format
    if dry_run:
        params["validateOnly"] = True
    size, sha256 = _digest(file)
    body: dict[str, Any] = {
        "taskType": "import",
        "entityType": entity,
        "params": params,
        "fileName": file.name,
        "fileSize": size,
        "fileSha256": sha256,
    }
    with _api(api, user, roles, token) as client:
        task = client.json("POST", "/tasks", json=body)
        headers = dict(task.get("uploadHeaders") or {})
        headers.setdefault(
            "Content-Type", mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        )
        client.put_file(task["uploadUrl"], file.read_bytes(), headers)
        try:
            client.json("POST", f"/tasks/{task['id']}/submit")
        except ApiProblem as error:
            if error.status != 409:  # the local store started it on arrival already
                raise
        if as_json:
            output.emit_json(task)
        else:
            output.out.print(f"uploaded {file.name} ({size} bytes): task {task['id']}")
        if not watch:
            return
        final = watching.follow(client, str(task["id"]), as_json=as_json, label=f"import {entity}")
        report = _report_url(client, final)
        if as_json:
            output.emit_json({"task": final, "errorReportUrl": report})
        else:
            _outcome(final)
            if report:
                output.out.print(f"  error report: {report}")
    raise typer.Exit(watching.exit_code(final))


def _report_url(client: Api, task: dict[str, Any]) -> str | None:
    result = task.get("result") or {}
    if not (task.get("reportFileId") or result.get("errorReportFileId")):
        return None
    link = client.json("GET", f"/tasks/{task['id']}/download", params={"file": "errorReport"})
    return client.absolute(str(link["downloadUrl"]))


def export_file(
    entity: Annotated[str, typer.Option("--entity", help="product, customer, order, inventory")],
    out_path: Annotated[Path, typer.Option("-o", "--output", help="where to write the file")],
    file_format: Annotated[str, typer.Option("--format", help="csv, jsonl, xlsx")] = "csv",
    api: ApiOpt = None,
    user: UserOpt = None,
    roles: RolesOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Export, wait for it, download the file and check its sha256 against the service's."""
    body = {"taskType": "export", "entityType": entity, "params": {"format": file_format}}
    with _api(api, user, roles, token) as client:
        task = client.json("POST", "/tasks", json=body)
        final = (
            watching.follow(client, str(task["id"]), as_json=False, label=f"export {entity}")
            if not as_json
            else _quiet_follow(client, str(task["id"]))
        )
        if final.get("status") != "completed":
            if as_json:
                output.emit_json({"task": final})
            else:
                _outcome(final)
            raise typer.Exit(watching.exit_code(final))
        stated = client.json("GET", f"/files/{final['outputFileId']}")["sha256"]
        link = client.json("GET", f"/tasks/{final['id']}/download")
        partial = out_path.with_name(out_path.name + ".part")
        sha = hashlib.sha256()
        size = 0
        with partial.open("wb") as handle:
            for chunk in client.download(str(link["downloadUrl"])):
                handle.write(chunk)
                sha.update(chunk)
                size += len(chunk)
        if sha.hexdigest() != stated:
            partial.unlink()
            message = f"sha256 mismatch: the service states {stated}, got {sha.hexdigest()}"
            if as_json:
                output.emit_json({"error": {"detail": message}})
            else:
                output.err.print(f"[red]{message}[/]")
            raise typer.Exit(output.ERROR)
        partial.replace(out_path)
    summary = {"task": final, "file": str(out_path), "size": size, "sha256": stated}
    if as_json:
        output.emit_json(summary)
    else:
        output.out.print(f"wrote {out_path} ({size} bytes, sha256 {stated} verified)")


def _quiet_follow(client: Api, task_id: str) -> dict[str, Any]:
    task: dict[str, Any] = {}
    for event in client.follow(task_id):
        current = event.data.get("task")
        if isinstance(current, dict):
            task = current
            if task.get("status") in output.TERMINAL or event.event == "deleted":
                return task
    return task


# ---------------------------------------------------------------- schedules and templates


@schedules_app.command("list")
@handles_errors
def schedules_list(
    status: Annotated[str | None, typer.Option("--status", help="active or paused")] = None,
    task_type: Annotated[str | None, typer.Option("--type", help="taskType")] = None,
    page: Annotated[int, typer.Option("--page", min=1, max=10_000)] = 1,
    page_size: Annotated[int, typer.Option("--page-size", min=1, max=100)] = 20,
    api: ApiOpt = None,
    user: UserOpt = None,
    roles: RolesOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Recurring schedules, newest first (yours; everyone's for admins) (GET /schedules)."""
    query = {"status": status, "taskType": task_type, "page": page, "pageSize": page_size}
    with _api(api, user, roles, token) as client:
        answer = client.json(
            "GET", "/schedules", params={k: v for k, v in query.items() if v is not None}
        )
    if as_json:
        output.emit_json(answer)
    else:
        columns = ["id", "name", "cron", "timeZone", "status", "nextFireAt"]
        output.generic_table(answer["items"], columns)
        output.out.print(f"{len(answer['items'])} of {answer['total']}")


@schedules_app.command("create")
@handles_errors
def schedules_create(
    name: Annotated[str, typer.Option("--name", help="the schedule's name")],
    cron: Annotated[str, typer.Option("--cron", help="5 fields, or 6 with seconds")],
    task_type: Annotated[str | None, typer.Option("--type", help="taskType")] = None,
    template: Annotated[str | None, typer.Option("--template", help="templateId")] = None,
    entity: Annotated[str | None, typer.Option("--entity")] = None,
    params: Annotated[str | None, typer.Option("--params", help="params as JSON")] = None,
    time_zone: Annotated[str | None, typer.Option("--time-zone", help="IANA name")] = None,
    api: ApiOpt = None,
    user: UserOpt = None,
    roles: RolesOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a schedule from a template or a taskType (POST /schedules)."""
    body: dict[str, Any] = {"cron": cron, "name": name}
    for key, value in (
        ("taskType", task_type),
        ("templateId", template),
        ("entityType", entity),
        ("timeZone", time_zone),
    ):
        if value is not None:
            body[key] = value
    if params is not None:
        body["params"] = _params(params)
    with _api(api, user, roles, token) as client:
        schedule = client.json("POST", "/schedules", json=body)
    if as_json:
        output.emit_json(schedule)
    else:
        output.out.print(f"created schedule {schedule.get('id')}")


for _action, _doc in (("pause", "Pause a schedule."), ("resume", "Resume a paused schedule.")):
    _post_action(
        schedules_app,
        _action,
        path=f"/schedules/{{id}}/{_action}",
        doc=_doc,
        said=f"{_action}d schedule {{answer[id]}}",
    )


@templates_app.command("list")
@handles_errors
def templates_list(
    search: Annotated[
        str | None, typer.Option("--search", help="in the name, description, category, type")
    ] = None,
    category: Annotated[str | None, typer.Option("--category")] = None,
    task_type: Annotated[str | None, typer.Option("--type", help="taskType")] = None,
    page: Annotated[int, typer.Option("--page", min=1, max=10_000)] = 1,
    page_size: Annotated[int, typer.Option("--page-size", min=1, max=100)] = 20,
    api: ApiOpt = None,
    user: UserOpt = None,
    roles: RolesOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Task templates by name, their latest versions (GET /templates)."""
    query = {
        "search": search,
        "category": category,
        "taskType": task_type,
        "page": page,
        "pageSize": page_size,
    }
    with _api(api, user, roles, token) as client:
        answer = client.json(
            "GET", "/templates", params={k: v for k, v in query.items() if v is not None}
        )
    if as_json:
        output.emit_json(answer)
    else:
        columns = ["id", "name", "taskType", "version", "category", "allowed"]
        output.generic_table(answer["items"], columns)
        output.out.print(f"{len(answer['items'])} of {answer['total']}")


def register(cli: typer.Typer) -> None:
    """Add the client commands to `common-ops`."""
    cli.add_typer(tasks_app, name="tasks")
    cli.add_typer(schedules_app, name="schedules")
    cli.add_typer(templates_app, name="templates")
    cli.command("import")(handles_errors(import_file))
    cli.command("export")(handles_errors(export_file))
