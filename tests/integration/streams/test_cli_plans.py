"""`common-ops schedules list|create|pause|resume` and `common-ops templates list` against a
real running server (API and worker embedded), for people and with --json for scripts."""

from __future__ import annotations

import httpx

from tests.fixtures.app import ADMIN
from tests.integration.streams.test_cli import lines, run

API = "/api/v1/operations"
MISSING = "00000000-0000-4000-8000-000000000000"


async def test_create_list_pause_and_resume_a_schedule(server: str) -> None:
    made = await run(
        server,
        *("schedules", "create", "--name", "Nightly nap", "--cron", "0 3 * * *"),
        *("--type", "sleep", "--params", '{"seconds": 0}', "--time-zone", "Europe/Berlin"),
        "--json",
    )
    assert made.exit_code == 0, made.output
    [schedule] = lines(made)
    assert schedule["name"] == "Nightly nap"
    assert schedule["timeZone"] == "Europe/Berlin"
    assert schedule["params"] == {"seconds": 0}
    assert schedule["owner"] == "alice"
    assert schedule["status"] == "active"
    assert len(schedule["nextFireTimes"]) == 5

    listed = await run(server, "schedules", "list", "--json")
    assert listed.exit_code == 0, listed.output
    [page] = lines(listed)
    assert [s["id"] for s in page["items"]] == [schedule["id"]]
    assert page["total"] == 1
    table = await run(server, "schedules", "list")
    assert table.exit_code == 0, table.output
    assert "Nightly nap" in table.stdout
    assert "0 3 * * *" in table.stdout
    assert "active" in table.stdout
    assert "1 of 1" in table.stdout
    assert (await run(server, "schedules", "list", user="bob")).stdout.count("Nightly") == 0

    paused = await run(server, "schedules", "pause", schedule["id"], "--json")
    assert paused.exit_code == 0, paused.output
    assert lines(paused)[0]["status"] == "paused"
    only_paused = lines(await run(server, "schedules", "list", "--status", "paused", "--json"))
    assert [s["id"] for s in only_paused[0]["items"]] == [schedule["id"]]
    resumed = await run(server, "schedules", "resume", schedule["id"])
    assert resumed.exit_code == 0, resumed.output
    assert f"resumed schedule {schedule['id']}" in resumed.stdout
    again = lines(await run(server, "schedules", "list", "--json"))[0]["items"][0]
    assert again["status"] == "active"
    plain = await run(server, "schedules", "pause", schedule["id"])
    assert f"paused schedule {schedule['id']}" in plain.stdout


async def test_a_schedule_from_a_template(server: str) -> None:
    async with httpx.AsyncClient(base_url=server) as http:
        body = {"name": "Short nap", "taskType": "sleep", "params": {"seconds": 0}}
        answer = await http.post(f"{API}/templates", json=body, headers=ADMIN)
        assert answer.status_code == 201, answer.text
        template = answer.json()
    made = await run(
        server,
        *("schedules", "create", "--name", "From a template", "--cron", "*/5 * * * *"),
        *("--template", template["id"], "--json"),
    )
    assert made.exit_code == 0, made.output
    assert lines(made)[0]["templateId"] == template["id"]
    assert lines(made)[0]["taskType"] is None


async def test_schedule_problems_exit_non_zero_with_their_fields(server: str) -> None:
    bad = ("schedules", "create", "--name", "Bad", "--type", "sleep")
    as_json = await run(server, *bad, "--cron", "every night", "--json")
    assert as_json.exit_code == 1, as_json.output
    [body] = lines(as_json)
    assert body["status"] == 422
    assert [e["field"] for e in body["error"]["errors"]] == ["cron"]
    for_people = await run(server, *bad, "--cron", "0 3 * * *", "--time-zone", "Mars/Olympus")
    assert for_people.exit_code == 1
    assert "error 422" in for_people.stderr
    assert "timeZone: unknown time zone" in for_people.stderr
    assert lines(await run(server, "schedules", "list", "--json"))[0]["total"] == 0

    nameless = await run(server, "schedules", "create", "--cron", "0 3 * * *", "--type", "noop")
    assert nameless.exit_code == 2  # a usage error: the API needs a name, so the CLI asks
    assert "--name" in nameless.output
    not_json = await run(server, *bad, "--cron", "0 3 * * *", "--params", "[1]")
    assert not_json.exit_code == 2

    unknown = await run(server, "schedules", "pause", MISSING, "--json")
    assert unknown.exit_code == 1
    assert lines(unknown)[0]["status"] == 404
    made = lines(await run(server, *bad, "--cron", "0 3 * * *", "--json"))[0]
    theirs = await run(server, "schedules", "resume", made["id"], user="bob")
    assert theirs.exit_code == 1
    assert "error 404" in theirs.stderr
    odd = await run(server, "schedules", "pause", "../../tasks")  # an id, never a path
    assert odd.exit_code == 1
    assert "error 404" in odd.stderr or "error 422" in odd.stderr
    away = await run(server, "schedules", "list", "--api", "http://127.0.0.1:9", "--json")
    assert away.exit_code == 1
    assert "error" in lines(away)[0]


async def test_templates_list(server: str) -> None:
    async with httpx.AsyncClient(base_url=server) as http:
        body = {"name": "Zz nap", "taskType": "sleep", "category": "diagnostics"}
        answer = await http.post(f"{API}/templates", json=body, headers=ADMIN)
        assert answer.status_code == 201, answer.text
        template = answer.json()
        changed = await http.put(
            f"{API}/templates/{template['id']}",
            json={**body, "params": {"seconds": 1}},
            headers=ADMIN,
        )
        assert changed.status_code == 200, changed.text
    as_json = await run(server, "templates", "list", "--json", "--page-size", "100")
    assert as_json.exit_code == 0, as_json.output
    [page] = lines(as_json)
    [mine] = [t for t in page["items"] if t["id"] == template["id"]]
    assert mine["version"] == 2
    assert mine["params"] == {"seconds": 1}
    found = lines(await run(server, "templates", "list", "--search", "Zz nap", "--json"))[0]
    assert [t["id"] for t in found["items"]] == [template["id"]]
    table = await run(server, "templates", "list", "--search", "Zz nap")
    assert table.exit_code == 0, table.output
    assert "Zz nap" in table.stdout
    assert "diagnostics" in table.stdout
    assert "1 of 1" in table.stdout
    wrong = await run(server, "templates", "list", "--category", "Not A Name", "--json")
    assert wrong.exit_code == 1
    assert lines(wrong)[0]["status"] == 422
