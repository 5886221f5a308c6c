"""The dashboard's insight pages over HTTP on both databases: analytics draws its charts as
inline SVG with a table of the same numbers for the period and type asked; dead letters are
for admins, filtered as the JSON API filters; the inbox lists the caller's messages and every
page's navigation says how many are unread."""

from __future__ import annotations

import re

import httpx

from service.bootstrap import Resources
from tests.fixtures.app import ADMIN, user
from tests.integration.api.support import create, make_completed, make_failed
from tests.integration.api.test_dashboard_pages import EXTERNAL
from tests.integration.api.test_dead_letters_api import letter

INSIGHTS = ("/ui/analytics", "/ui/dead-letters", "/ui/inbox")
IN_APP = {"onCompletion": True, "onFailure": True, "channels": ["inApp"]}


def unread_in_nav(html: str) -> int | None:
    found = re.search(r'Inbox \(<span id="nav-unread">(\d+)</span>', html)
    return None if found is None else int(found.group(1))


async def test_no_insight_page_names_an_external_url(api: httpx.AsyncClient) -> None:
    for path in INSIGHTS:
        page = await api.get(path, headers=ADMIN)
        assert page.status_code == 200, (path, page.text)
        assert not EXTERNAL.search(page.text), (path, EXTERNAL.search(page.text))
        assert 'href="/ui/static/ui.css"' in page.text
    assert (await api.get("/ui/analytics")).status_code == 401


class TestAnalytics:
    async def test_charts_and_tables_for_the_period(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        for _ in range(3):
            await make_completed(resources, api, taskType="noop")
        await make_failed(resources, api, taskType="noop")
        await make_completed(resources, api, params={"seconds": 1})
        page = await api.get("/ui/analytics", params={"days": 30}, headers=user())
        assert page.status_code == 200, page.text
        html = page.text
        assert '<option value="30" selected>' in html
        for chart in ("throughput", "failures", "percentiles", "hours"):
            block = html.split(f'id="chart-{chart}"', 1)[1].split("</figure>", 1)[0]
            assert "<svg" in block, chart
            assert 'role="img"' in block
            assert "<table>" in block  # the same numbers as a table
        assert '<dd data-key="tasks">5</dd>' in html
        assert '<tr data-type="noop"><th scope="row">noop</th><td>4</td><td>25.0 %</td>' in html
        assert html.count('<rect class="bar c-p50"') == 2  # noop and sleep were measured
        narrowed = (
            await api.get("/ui/analytics", params={"taskType": "sleep"}, headers=user())
        ).text
        assert '<dd data-key="tasks">1</dd>' in narrowed
        assert "of type sleep" in narrowed

    async def test_only_the_callers_tasks_and_bad_choices_shown(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        await make_completed(resources, api, taskType="noop", headers=user("bob"))
        mine = (await api.get("/ui/analytics", headers=user())).text
        assert '<dd data-key="tasks">0</dd>' in mine
        assert "Nothing to draw" in mine
        assert '<dd data-key="tasks">1</dd>' in (await api.get("/ui/analytics", headers=ADMIN)).text
        odd = await api.get("/ui/analytics", params={"days": 8}, headers=user())
        assert odd.status_code == 200
        assert "The period must be one of 7, 30, 90 days" in odd.text
        unknown = await api.get("/ui/analytics", params={"taskType": "nope"}, headers=user())
        assert "Unknown task type" in unknown.text
        assert (
            await api.get("/ui/analytics", params={"days": "x"}, headers=user())
        ).status_code == 422


class TestDeadLetters:
    async def test_admins_see_and_filter(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        first = await letter(resources)
        other = await letter(resources, event_type="operations.task.retried", topic="elsewhere")
        assert (await api.get("/ui/dead-letters", headers=user())).status_code == 403
        assert 'href="/ui/dead-letters"' not in (await api.get("/ui/tasks", headers=user())).text
        everything = (await api.get("/ui/dead-letters", headers=ADMIN)).text
        assert first["id"] in everything
        assert other["id"] in everything
        assert '<span id="total">2</span>' in everything
        assert everything.count("data-replay=") == 2
        narrowed = await api.get(
            "/ui/dead-letters", params={"eventType": "operations.task.retried"}, headers=ADMIN
        )
        assert other["id"] in narrowed.text
        assert first["id"] not in narrowed.text
        assert "&#34;eventType&#34;: &#34;operations.task.retried&#34;" in narrowed.text
        by_task = await api.get(
            "/ui/dead-letters", params={"taskId": first["subject"]}, headers=ADMIN
        )
        assert '<span id="total">1</span>' in by_task.text
        bad = await api.get("/ui/dead-letters", params={"taskId": "nope"}, headers=ADMIN)
        assert bad.status_code == 200
        assert "The filter is not valid" in bad.text
        backwards = {"from": "2026-12-06", "to": "2026-12-01"}
        assert (
            "The filter is not valid"
            in (await api.get("/ui/dead-letters", params=backwards, headers=ADMIN)).text
        )


class TestInbox:
    async def test_messages_and_the_unread_count_on_every_page(
        self, api: httpx.AsyncClient, resources: Resources
    ) -> None:
        done = await make_completed(resources, api, notificationSettings=IN_APP, name="Feed")
        await make_failed(resources, api, notificationSettings=IN_APP, name="Sync")
        tasks_page = (await api.get("/ui/tasks", headers=user())).text
        assert unread_in_nav(tasks_page) == 2
        assert unread_in_nav((await api.get("/ui/analytics", headers=user())).text) == 2
        assert unread_in_nav((await api.get("/ui/schedules", headers=user())).text) == 2
        assert unread_in_nav((await api.get("/ui/tasks", headers=user("bob"))).text) == 0
        inbox = (await api.get("/ui/inbox", headers=user())).text
        assert "Feed completed" in inbox
        assert f'href="/ui/tasks/{done["id"]}"' in inbox
        assert inbox.count("Mark read</button>") == 2
        assert '<span id="inbox-unread">2</span>' in inbox
        messages = (await api.get("/api/v1/operations/messages", headers=user())).json()
        first = messages["items"][0]["id"]
        assert (
            await api.post(f"/api/v1/operations/messages/{first}/read", headers=user())
        ).is_success
        assert unread_in_nav((await api.get("/ui/inbox", headers=user())).text) == 1
        unread_only = (await api.get("/ui/inbox", params={"unread": "true"}, headers=user())).text
        assert unread_only.count("Mark read</button>") == 1
        assert (await api.post("/api/v1/operations/messages/read-all", headers=user())).is_success
        assert unread_in_nav((await api.get("/ui/new", headers=user())).text) == 0

    async def test_without_identity_no_count(self, api: httpx.AsyncClient) -> None:
        await create(api)
        answer = await api.get("/ui/inbox")
        assert answer.status_code == 401
        assert unread_in_nav(answer.text) is None
