"""The dashboard's schedules and templates pages over HTTP (no browser): served as HTML with
no external URL, an unknown id is a 404 page, a user sees what the JSON API lets them see,
and the forms carry the JSON API's own request schemas."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import httpx

from service.bootstrap import Resources
from tests.fixtures.app import ADMIN, user
from tests.integration.api.test_dashboard_pages import EXTERNAL, _assets
from tests.integration.api.test_schedules_api import tick

API = "/api/v1/operations"
ALICE = user("alice")
BOB = user("bob")


async def _schedule(api: httpx.AsyncClient, headers: dict[str, str], name: str) -> Any:
    body = {"name": name, "cron": "0 3 * * *", "timeZone": "Europe/Berlin", "taskType": "noop"}
    answer = await api.post(f"{API}/schedules", json=body, headers=headers)
    assert answer.status_code == 201, answer.text
    return answer.json()


async def _template(api: httpx.AsyncClient, **body: Any) -> Any:
    body = {"name": "Short nap", "taskType": "sleep", "params": {"seconds": 0}, **body}
    answer = await api.post(f"{API}/templates", json=body, headers=ADMIN)
    assert answer.status_code == 201, answer.text
    return answer.json()


def _script_json(page: str, element_id: str) -> Any:
    found = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', page)
    assert found, element_id
    return json.loads(found.group(1))


async def test_pages_are_html_with_no_external_url(api: httpx.AsyncClient) -> None:
    schedule = await _schedule(api, ADMIN, "Nightly")
    template = await _template(api)
    paths = (
        "/ui/schedules",
        "/ui/schedules/new",
        f"/ui/schedules/{schedule['id']}",
        "/ui/templates",
        "/ui/templates/new",
        f"/ui/templates/{template['id']}",
    )
    for path in paths:
        page = await api.get(path, headers=ADMIN)
        assert page.status_code == 200, (path, page.text)
        assert page.headers["content-type"].startswith("text/html")
        assert not EXTERNAL.search(page.text), (path, EXTERNAL.search(page.text))
        assert set(_assets(page.text)) == {"/ui/static/ui.css", "/ui/static/ui.js"}
        assert 'href="/ui/schedules"' in page.text  # the navigation names both sections
        assert 'href="/ui/templates"' in page.text


async def test_the_schedules_list_shows_state_in_words_and_next_fire_times(
    api: httpx.AsyncClient,
) -> None:
    schedule = await _schedule(api, ALICE, "Nightly noop")
    page = (await api.get("/ui/schedules", headers=ALICE)).text
    assert "Nightly noop" in page
    assert "0 3 * * *" in page
    assert "Europe/Berlin" in page
    assert "active" in page
    detail = (await api.get(f"{API}/schedules/{schedule['id']}", headers=ALICE)).json()
    for fire in detail["nextFireTimes"][:3]:  # each shown at its local wall-clock time
        assert fire["local"][:19].replace("T", " ") in page
    assert detail["nextFireTimes"][3]["local"][:19].replace("T", " ") not in page
    paused = await api.post(f"{API}/schedules/{schedule['id']}/pause", headers=ALICE)
    assert paused.status_code == 200
    page = (await api.get("/ui/schedules", headers=ALICE)).text
    assert "paused" in page
    assert "none while paused" in page
    assert 'data-schedule-action="resume"' in page


async def test_a_user_sees_only_their_own_schedules(api: httpx.AsyncClient) -> None:
    mine = await _schedule(api, ALICE, "Alice's")
    theirs = await _schedule(api, BOB, "Bob's")
    page = (await api.get("/ui/schedules", headers=ALICE)).text
    assert mine["id"] in page
    assert theirs["id"] not in page
    everyone = (await api.get("/ui/schedules", headers=ADMIN)).text
    assert mine["id"] in everyone
    assert theirs["id"] in everyone
    other = await api.get(f"/ui/schedules/{theirs['id']}", headers=ALICE)
    assert other.status_code == 404
    assert other.headers["content-type"].startswith("text/html")
    own = await api.get(f"/ui/schedules/{mine['id']}", headers=ALICE)
    assert own.status_code == 200
    values = _script_json(own.text, "form-values")
    assert values["name"] == "Alice's"
    assert values["cron"] == "0 3 * * *"


async def test_unknown_ids_are_404_pages(api: httpx.AsyncClient) -> None:
    missing = await api.get("/ui/schedules/00000000-0000-4000-8000-000000000000", headers=ALICE)
    assert missing.status_code == 404
    assert "not found" in missing.text
    for template_id in ("no-such-template", "not a valid id!", "x" * 80):
        answer = await api.get(f"/ui/templates/{template_id}", headers=ALICE)
        assert answer.status_code == 404, template_id
        assert answer.headers["content-type"].startswith("text/html")


async def test_without_identity_the_pages_say_so(api: httpx.AsyncClient) -> None:
    for path in ("/ui/schedules", "/ui/schedules/new", "/ui/templates", "/ui/templates/new"):
        answer = await api.get(path)
        assert answer.status_code == 401, path
        assert "X-User-ID" in answer.text


async def test_forms_carry_the_api_request_schemas(api: httpx.AsyncClient) -> None:
    template = await _template(api, name="Usable nap")
    locked = await _template(api, name="Admins' nap", requiredRole="admin")
    page = (await api.get("/ui/schedules/new", headers=ALICE)).text
    schema = _script_json(page, "form-schema")
    names = list(schema["properties"])
    assert names[:3] == ["name", "description", "cron"]
    assert set(schema["required"]) == {"name", "cron"}
    assert schema["additionalProperties"] is False
    assert schema["properties"]["timeZone"]["title"] == "Time zone"
    task_types = schema["properties"]["taskType"]["anyOf"][0]["enum"]
    assert "sleep" in task_types
    # the templates alice may use are offered by name; one that needs a role she lacks is not
    offered = schema["x-labels"]["templateId"]
    assert offered[template["id"]].startswith("Usable nap")
    assert locked["id"] not in offered

    edit = (await api.get(f"/ui/templates/{template['id']}", headers=ADMIN)).text
    assert _script_json(edit, "form-values")["name"] == "Usable nap"
    assert _script_json(edit, "form-schema")["required"] == ["name", "taskType"]
    assert "seconds" in _script_json(edit, "run-schema")["properties"]


async def test_a_user_reads_templates_but_only_admins_manage_them(api: httpx.AsyncClient) -> None:
    template = await _template(api, name="Shared nap")
    locked = await _template(api, name="Admins' nap", requiredRole="admin")
    page = (await api.get("/ui/templates", headers=ALICE)).text
    assert "Shared nap" in page
    assert "Admins&#39; nap" in page
    assert 'href="/ui/templates/new"' not in page
    assert (await api.get("/ui/templates/new", headers=ALICE)).status_code == 403
    shown = (await api.get(f"/ui/templates/{template['id']}", headers=ALICE)).text
    assert 'id="run-form"' in shown  # alice may run it
    assert 'id="plan-form"' not in shown  # but not change it
    not_hers = (await api.get(f"/ui/templates/{locked['id']}", headers=ALICE)).text
    assert 'id="run-form"' not in not_hers
    assert "needs role admin" in not_hers
    admin_page = (await api.get(f"/ui/templates/{template['id']}", headers=ADMIN)).text
    assert 'id="plan-form"' in admin_page
    assert 'href="/ui/templates/new"' in (await api.get("/ui/templates", headers=ADMIN)).text


async def test_a_template_page_lists_its_versions(api: httpx.AsyncClient) -> None:
    template = await _template(api, name="Nap")
    body = {"name": "Nap", "taskType": "sleep", "params": {"seconds": 1}}
    changed = await api.put(f"{API}/templates/{template['id']}", json=body, headers=ADMIN)
    assert changed.status_code == 200, changed.text
    page = (await api.get(f"/ui/templates/{template['id']}", headers=ALICE)).text
    assert "version 2" in page
    assert 'data-version="1"' in page
    assert 'data-version="2"' in page
    assert page.index('data-version="2"') < page.index('data-version="1"')  # newest first
    listing = (await api.get("/ui/templates", headers=ALICE)).text
    assert "v2" in listing


async def test_last_runs_link_to_their_tasks_with_their_status(
    api: httpx.AsyncClient, resources: Resources
) -> None:
    schedule = await _schedule(api, ALICE, "Nightly noop")
    other = await _schedule(api, ALICE, "Another noop")  # the list reads both schedules' runs
    report = await tick(resources, datetime.fromisoformat(schedule["nextFireAt"]))
    assert report.made == 2
    runs = []
    for each in (schedule, other):
        detail = (await api.get(f"{API}/schedules/{each['id']}", headers=ALICE)).json()
        [run] = detail["lastRuns"]
        runs.append(run)
    listing = (await api.get("/ui/schedules", headers=ALICE)).text
    for run in runs:
        assert f'href="/ui/tasks/{run["taskId"]}"' in listing
        assert f'data-status="{run["taskStatus"]}"' in listing  # the status badge, in words too
    run = runs[0]
    task_link = f'href="/ui/tasks/{run["taskId"]}"'
    page = (await api.get(f"/ui/schedules/{schedule['id']}", headers=ALICE)).text
    assert task_link in page
    assert f'href="/ui/tasks/{runs[1]["taskId"]}"' not in page  # the other schedule's run
    assert run["outcome"] in page
    assert "Not fired yet" not in page


async def test_the_lists_page_with_the_shared_pager(api: httpx.AsyncClient) -> None:
    """The schedules and templates lists page as the tasks list does (the pager macro)."""
    for n in range(26):  # one more than a page
        await _schedule(api, ALICE, f"Nightly {n}")
        await _template(api, name=f"Nap {n}")
    for section in ("schedules", "templates"):
        first = (await api.get(f"/ui/{section}", headers=ALICE)).text
        assert '<nav aria-label="Pages" class="pager">' in first
        assert f'<a href="/ui/{section}?page=2" rel="next">Next</a>' in first
        assert 'rel="prev"' not in first
        second = (await api.get(f"/ui/{section}", params={"page": 2}, headers=ALICE)).text
        assert f'<a href="/ui/{section}?page=1" rel="prev">Previous</a>' in second
        assert 'rel="next"' not in second
        assert "page 2 of 2" in second
