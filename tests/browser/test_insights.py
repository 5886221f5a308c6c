"""The insight pages driven in Chromium: analytics charts for a period with finished tasks and
a switch of period; dead letters replayed one by one and by filter after the count; the inbox
marking read changes the unread count in the navigation."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from uuid import uuid4

from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select

from service.bootstrap import build_resources
from service.clock import utcnow
from service.usecases import dead_letters
from tests.browser.conftest import Dashboard, wait_for
from tests.fixtures.app import make_settings

IN_APP = {"onCompletion": True, "onFailure": True, "channels": ["inApp"]}


def _finished(board: Dashboard, ids: list[str]) -> bool:
    statuses = [board.api("GET", f"/tasks/{i}")["status"] for i in ids]
    return all(s in ("completed", "failed") for s in statuses)


def _text(board: Dashboard, element_id: str) -> str:
    return board.driver.find_element(By.ID, element_id).text


def test_analytics_charts_for_a_period_and_a_switch(dashboard: Dashboard) -> None:
    ids = [dashboard.api("POST", "/tasks", json={"taskType": "noop"})["id"] for _ in range(3)]
    fail = {"taskType": "fail", "params": {"message": "nope", "permanent": True}}
    ids.append(dashboard.api("POST", "/tasks", json=fail)["id"])
    wait_for(lambda: _finished(dashboard, ids), what="the tasks finished")
    dashboard.login("alice")
    dashboard.open("/ui/analytics")
    assert (
        dashboard.driver.find_element(By.CSS_SELECTOR, '#a-totals [data-key="tasks"]').text == "4"
    )
    for chart in ("throughput", "failures", "percentiles", "hours"):
        bars = dashboard.driver.find_elements(By.CSS_SELECTOR, f"#chart-{chart} svg rect.bar")
        assert bars, chart
    rate = dashboard.driver.find_element(By.CSS_SELECTOR, '#a-totals [data-key="failureRate"]')
    assert rate.text == "25.0 %"
    days = dashboard.driver.find_elements(By.CSS_SELECTOR, "#chart-throughput tbody tr")
    assert len(days) == 7
    # the chart's table opens from the keyboard
    summary = dashboard.driver.find_element(By.CSS_SELECTOR, "#chart-failures summary")
    summary.send_keys(" ")
    wait_for(
        lambda: dashboard.driver.find_element(
            By.CSS_SELECTOR, '#chart-failures tr[data-type="fail"]'
        ).is_displayed(),
        what="the table shown",
    )
    dashboard.driver.execute_script("window.scrollTo(0, 0)")
    dashboard.screenshot("analytics")
    Select(dashboard.driver.find_element(By.ID, "a-days")).select_by_value("30")
    dashboard.driver.find_element(By.ID, "a-apply").click()
    wait_for(lambda: "days=30" in dashboard.driver.current_url, what="30 days")
    scope = dashboard.driver.find_element(By.ID, "a-scope")
    assert scope.get_attribute("data-days") == "30"
    assert len(dashboard.driver.find_elements(By.CSS_SELECTOR, "#chart-throughput tbody tr")) == 30
    assert (
        dashboard.driver.find_element(By.CSS_SELECTOR, '#a-totals [data-key="tasks"]').text == "4"
    )
    Select(dashboard.driver.find_element(By.ID, "a-type")).select_by_value("fail")
    dashboard.driver.find_element(By.ID, "a-apply").click()
    wait_for(lambda: "taskType=fail" in dashboard.driver.current_url, what="type filter")
    assert (
        dashboard.driver.find_element(By.CSS_SELECTOR, '#a-totals [data-key="tasks"]').text == "1"
    )


def _record(database_url: str, data_dir: Path, events: list[dict[str, Any]]) -> None:
    """Dead letters as the worker's dead-letter consumer records them (the broker gave up)."""

    async def run() -> None:
        resources = build_resources(make_settings(database_url, data_dir), "test")
        try:
            for event in events:
                async with resources.unit() as uow:
                    await dead_letters.record(
                        uow, event, topic="operations.deadletter", now=utcnow()
                    )
        finally:
            await resources.close()

    asyncio.run(run())


def _event(event_type: str, task_id: str) -> dict[str, Any]:
    return {
        "id": f"evt-{uuid4().hex[:8]}",
        "specversion": "1.0",
        "type": event_type,
        "source": "common-operations",
        "subject": task_id,
        "data": {"id": task_id, "taskType": "noop"},
    }


def _replayed(board: Dashboard, letter_id: int) -> str:
    row = board.driver.find_element(By.CSS_SELECTOR, f'#dead-letters tr[data-id="{letter_id}"]')
    return row.find_element(By.CSS_SELECTOR, ".replayed").text


def test_dead_letters_replay_one_then_by_filter_after_the_count(
    dashboard: Dashboard, database_url: str, tmp_path: Path
) -> None:
    task = dashboard.api("POST", "/tasks", json={"taskType": "noop"})
    events = [_event("operations.task.created", task["id"])]
    events += [_event("operations.task.retried", task["id"]) for _ in range(2)]
    _record(database_url, tmp_path / "record", events)
    admin = {"user": "root", "roles": "admin"}
    letters = dashboard.api("GET", "/dead-letters", **admin)
    by_type = {d["eventType"]: d["id"] for d in letters}
    one = by_type["operations.task.created"]
    dashboard.login("root", "admin")
    dashboard.open("/ui/dead-letters")
    assert _text(dashboard, "total") == "3"
    assert _replayed(dashboard, one) == "not replayed"
    dashboard.driver.find_element(By.CSS_SELECTOR, f'[data-replay="{one}"]').click()
    wait_for(lambda: "replayed" in _text(dashboard, "flash"), what="replayed one")
    wait_for(lambda: "by root" in _replayed(dashboard, one), what="marked after the reload")
    dashboard.driver.find_element(By.ID, "d-type").send_keys("operations.task.retried")
    dashboard.driver.find_element(By.ID, "d-apply").click()
    wait_for(lambda: _text(dashboard, "total") == "2", what="the filter")
    dashboard.driver.find_element(By.ID, "replay-filter").click()
    text = wait_for(lambda: _text(dashboard, "confirm-text"), what="the count")
    assert text.startswith("2 dead letters match the filter")
    dashboard.screenshot("dead-letters")
    dashboard.driver.find_element(By.ID, "confirm-yes").click()
    wait_for(lambda: "2 dead letters replayed" in _text(dashboard, "flash"), what="replayed")
    assert dashboard.api("GET", "/dead-letters?replayed=false", **admin) == []
    replayed = dashboard.api("GET", "/dead-letters?replayed=true", **admin)
    assert {d["replayedBy"] for d in replayed} == {"root"}
    assert len(replayed) == 3


def _unread(board: Dashboard) -> str:
    return board.driver.find_element(By.ID, "nav-unread").text


def test_inbox_mark_read_changes_the_unread_count(dashboard: Dashboard) -> None:
    body = {"taskType": "noop", "notificationSettings": IN_APP}
    ids = [dashboard.api("POST", "/tasks", json={**body, "name": n})["id"] for n in "ABC"]
    wait_for(lambda: _finished(dashboard, ids), what="the tasks finished")
    wait_for(lambda: dashboard.api("GET", "/messages")["unread"] == 3, what="three messages")
    dashboard.login("alice")
    dashboard.open("/ui/tasks")
    nav = dashboard.driver.find_element(By.CSS_SELECTOR, 'a[href="/ui/inbox"]')
    assert nav.text == "Inbox (3)"
    nav.click()
    wait_for(lambda: dashboard.driver.current_url.endswith("/ui/inbox"), what="the inbox")
    buttons = dashboard.driver.find_elements(By.CSS_SELECTOR, "#messages button[data-read]")
    assert len(buttons) == 3
    buttons[0].send_keys("\n")  # keyboard: Enter on the focused button
    wait_for(lambda: _unread(dashboard) == "2", what="one read")
    focused = dashboard.driver.switch_to.active_element
    assert focused.get_attribute("data-read") == buttons[1].get_attribute("data-read")
    assert _text(dashboard, "inbox-unread") == "2"
    assert (
        len(dashboard.driver.find_elements(By.CSS_SELECTOR, '#messages li[data-read="true"]')) == 1
    )
    dashboard.screenshot("inbox")
    dashboard.driver.find_element(By.ID, "read-all").click()
    wait_for(lambda: _unread(dashboard) == "0", what="all read")
    assert dashboard.api("GET", "/messages")["unread"] == 0
    dashboard.open("/ui/analytics")
    nav = dashboard.driver.find_element(By.CSS_SELECTOR, 'a[href="/ui/inbox"]')
    assert nav.text == "Inbox (0)"
