"""The dashboard driven in Chromium: filter the list, watch a progress bar move and cancel the
task from its page, the import wizard with its dry run and error report, a bulk retry by filter
after the count preview, a queue paused and resumed, a task made from its schema's form."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.select import Select

from tests.browser.conftest import Dashboard, wait_for


def _rows(driver: WebDriver) -> list[str]:
    return [
        r.get_attribute("data-id") or ""
        for r in driver.find_elements(By.CSS_SELECTOR, "#tasks tbody tr[data-id]")
    ]


def _task(board: Dashboard, task_id: str, user: str = "alice") -> dict[str, object]:
    answer: dict[str, object] = board.api("GET", f"/tasks/{task_id}", user=user)
    return answer


def test_filter_the_list(dashboard: Dashboard) -> None:
    needle = dashboard.api(
        "POST",
        "/tasks",
        json={"taskType": "sleep", "params": {"seconds": 0}, "tags": ["blue"], "name": "first"},
    )
    other = dashboard.api(
        "POST",
        "/tasks",
        json={"taskType": "fail", "params": {"message": "needle-in-params", "permanent": True}},
    )
    dashboard.api("POST", "/tasks", json={"taskType": "noop"}, user="bob")
    dashboard.login("alice")
    dashboard.open("/ui/tasks")
    assert set(_rows(dashboard.driver)) >= {needle["id"], other["id"]}
    assert len(_rows(dashboard.driver)) == 2  # bob's task is not alice's to see
    box = dashboard.driver.find_element(By.ID, "f-search")
    box.send_keys("needle-in")
    dashboard.driver.find_element(By.ID, "apply-filters").click()
    wait_for(lambda: _rows(dashboard.driver) == [other["id"]], what="search inside params")
    dashboard.open("/ui/tasks")
    dashboard.driver.find_element(By.ID, "f-tag").send_keys("blue")
    dashboard.driver.find_element(By.ID, "apply-filters").click()
    wait_for(lambda: _rows(dashboard.driver) == [needle["id"]], what="tag filter")
    Select(dashboard.driver.find_element(By.ID, "f-type")).select_by_value("sleep")
    dashboard.driver.find_element(By.ID, "apply-filters").click()
    wait_for(lambda: "taskType=sleep" in dashboard.driver.current_url, what="type filter")
    assert _rows(dashboard.driver) == [needle["id"]]
    dashboard.screenshot("tasks-filtered")


def test_progress_moves_then_cancel_from_the_task_page(dashboard: Dashboard) -> None:
    task = dashboard.api("POST", "/tasks", json={"taskType": "sleep", "params": {"seconds": 60}})
    dashboard.login("alice")
    dashboard.open("/ui/tasks")
    bar = f'#tasks tr[data-id="{task["id"]}"] progress'

    def value() -> int:
        return int(dashboard.driver.find_element(By.CSS_SELECTOR, bar).get_attribute("value") or 0)

    first = wait_for(lambda: value() or None, what="progress above 0")
    wait_for(lambda: value() > first, what="the bar moving on")
    # 5 % of a 60 s task is 3 s: past the end of a stream (2 s here), so the page resumed it
    wait_for(lambda: value() >= first + 5, what="the bar moving on after its stream resumed")
    eta = dashboard.driver.find_element(By.CSS_SELECTOR, f'#tasks tr[data-id="{task["id"]}"] .eta')
    assert eta.text.startswith("ETA")
    status = dashboard.driver.find_element(
        By.CSS_SELECTOR, f'#tasks tr[data-id="{task["id"]}"] .status'
    )
    assert "processing" in status.text  # told in words, not by colour alone
    dashboard.screenshot("tasks-progress")
    dashboard.open(f"/ui/tasks/{task['id']}")
    dashboard.driver.find_element(By.CSS_SELECTOR, '#task-actions [data-action="cancel"]').click()
    wait_for(
        lambda: (
            "cancelled" in dashboard.driver.find_element(By.ID, "status").text
            and "(cancelling)" not in dashboard.driver.find_element(By.ID, "status").text
        ),
        what="the page showing the task cancelled",
    )
    assert _task(dashboard, task["id"])["status"] == "cancelled"
    events = dashboard.api("GET", f"/tasks/{task['id']}/events")
    assert any(
        e["eventType"].endswith("cancel_requested") and e["actor"] == "alice" for e in events
    )
    timeline = dashboard.driver.find_element(By.ID, "timeline").text
    assert "cancelled" in timeline
    assert "by alice" in timeline
    attempts = dashboard.driver.find_element(By.ID, "attempts").text
    assert "push" in attempts or "poll" in attempts
    dashboard.screenshot("task-cancelled")


CSV = (
    "sku,name,price,currency,stock\n"
    "SKU-1,Red shoe,12.50,EUR,3\n"
    "SKU-2,Blue shoe,not-a-price,EUR,1\n"
    "SKU-3,Green shoe,9.99,EUR,0\n"
    "SKU-4,Hat,5,EUR,7\n"
)


def test_import_wizard_dry_run_confirm_and_error_report(
    dashboard: Dashboard, tmp_path: Path
) -> None:
    source = tmp_path / "products.csv"
    source.write_text(CSV)
    dashboard.login("alice")
    dashboard.open("/ui/import")
    Select(dashboard.driver.find_element(By.ID, "import-entity")).select_by_value("product")
    dashboard.driver.find_element(By.ID, "import-file").send_keys(str(source))
    dashboard.driver.find_element(By.ID, "import-check").click()

    def figure(box: str, key: str) -> str:
        return dashboard.driver.find_element(By.CSS_SELECTOR, f'#{box} dd[data-key="{key}"]').text

    wait_for(
        lambda: dashboard.driver.find_element(By.ID, "import-confirm").is_displayed(),
        what="the dry run's summary",
        timeout=60,
    )
    assert dashboard.driver.find_element(By.ID, "upload-progress").get_attribute("value") == "100"
    assert figure("dry-summary", "created") == "3"
    assert figure("dry-summary", "failed") == "1"
    assert "not-a-price" in dashboard.driver.find_element(By.ID, "first-errors").text
    dry_tasks = dashboard.api("GET", "/tasks?taskType=import")["items"]
    assert dry_tasks[0]["params"]["validateOnly"] is True
    dashboard.screenshot("import-dry-run")
    dashboard.driver.find_element(By.ID, "import-confirm").click()
    wait_for(
        lambda: "Import completed" in dashboard.driver.find_element(By.ID, "run-text").text,
        what="the import finishing",
        timeout=60,
    )
    assert figure("run-summary", "created") == "3"
    assert figure("run-summary", "failed") == "1"
    assert dashboard.driver.find_element(By.ID, "run-report").is_displayed()
    real = next(
        t
        for t in dashboard.api("GET", "/tasks?taskType=import")["items"]
        if not t["params"].get("validateOnly")
    )
    assert real["inputFileId"] == dry_tasks[0]["inputFileId"]  # the file is uploaded once
    link = dashboard.api("GET", f"/tasks/{real['id']}/download?file=errorReport")
    url = link["downloadUrl"]
    report = httpx.get(url if url.startswith("http") else dashboard.url + url)
    assert "not-a-price" in report.text
    dashboard.screenshot("import-done")


def test_bulk_retry_by_filter_after_the_count(dashboard: Dashboard) -> None:
    body = {"taskType": "fail", "params": {"permanent": True}, "tags": ["nightly"], "maxRetries": 0}
    ids = [dashboard.api("POST", "/tasks", json=body)["id"] for _ in range(3)]
    dashboard.api("POST", "/tasks", json={**body, "tags": ["other"]})
    for task_id in ids:

        def failed(t: str = task_id) -> bool:
            return _task(dashboard, t)["status"] == "failed"

        wait_for(failed, what="failed")
    dashboard.login("alice")
    dashboard.open("/ui/tasks?tag=nightly&status=failed")
    assert sorted(_rows(dashboard.driver)) == sorted(ids)
    Select(dashboard.driver.find_element(By.ID, "bulk-action")).select_by_value("retry")
    dashboard.driver.find_element(By.ID, "bulk-filter").click()
    text = wait_for(lambda: dashboard.driver.find_element(By.ID, "confirm-text").text, what="count")
    assert text.startswith("3 tasks match the filter; 3 of them will be retried")
    dashboard.screenshot("bulk-retry-preview")
    dashboard.driver.find_element(By.ID, "confirm-yes").click()
    wait_for(
        lambda: "3 tasks retried" in dashboard.driver.find_element(By.ID, "flash").text,
        what="the outcome",
    )
    for task_id in ids:
        events = dashboard.api("GET", f"/tasks/{task_id}/events")
        retried = [e for e in events if e["eventType"].endswith("retried")]
        assert retried
        assert retried[0]["actor"] == "alice"
    dashboard.screenshot("bulk-retry-done")


def test_pause_and_resume_a_queue(dashboard: Dashboard) -> None:
    dashboard.login("root", "admin")
    dashboard.open("/ui/queues")
    row = '#queues tr[data-queue="default"]'
    dashboard.driver.find_element(By.CSS_SELECTOR, f'{row} [data-queue-action="pause"]').click()
    wait_for(
        lambda: "paused" in dashboard.driver.find_element(By.CSS_SELECTOR, f"{row} .state").text,
        what="the queue shown paused",
    )
    time.sleep(1.2)  # a worker reads the paused queues at most once a second
    task = dashboard.api("POST", "/tasks", json={"taskType": "noop"})
    wait_for(
        lambda: dashboard.driver.find_element(By.CSS_SELECTOR, f"{row} .depth").text == "1",
        what="the waiting task counted",
    )
    time.sleep(1.2)
    assert _task(dashboard, task["id"])["status"] == "pending"
    dashboard.screenshot("queues-paused")
    dashboard.driver.find_element(By.CSS_SELECTOR, f'{row} [data-queue-action="resume"]').click()
    wait_for(
        lambda: "active" in dashboard.driver.find_element(By.CSS_SELECTOR, f"{row} .state").text,
        what="the queue shown active",
    )
    wait_for(lambda: _task(dashboard, task["id"])["status"] == "completed", what="the task ran")
    dashboard.screenshot("queues-resumed")


def test_new_task_form_from_the_schema(dashboard: Dashboard) -> None:
    dashboard.login("alice")
    dashboard.open("/ui/new")
    Select(dashboard.driver.find_element(By.ID, "task-type")).select_by_value("sleep")
    seconds = dashboard.driver.find_element(By.ID, "p-seconds")
    label = dashboard.driver.find_element(By.CSS_SELECTOR, 'label[for="p-seconds"]')
    assert label.text == "Seconds"
    seconds.send_keys("0.2")
    dashboard.driver.find_element(By.ID, "task-tags").send_keys("from-form")
    dashboard.screenshot("new-task")
    dashboard.driver.find_element(By.CSS_SELECTOR, "#new-task button[type=submit]").click()
    task_id = dashboard.settled_task_page()
    assert dashboard.driver.current_url.endswith(f"/ui/tasks/{task_id}")
    task = _task(dashboard, task_id)
    assert task["params"] == {"seconds": 0.2}
    assert task["tags"] == ["from-form"]
    dashboard.open("/ui/export")
    Select(dashboard.driver.find_element(By.ID, "export-entity")).select_by_value("product")
    dashboard.driver.find_element(By.CSS_SELECTOR, "#export-form button[type=submit]").click()
    wait_for(lambda: "/ui/tasks/" in dashboard.driver.current_url, what="the export's page")
    wait_for(
        lambda: dashboard.driver.find_elements(By.CSS_SELECTOR, '[data-download="output"]'),
        what="the export's download button",
        timeout=60,
    )
    dashboard.screenshot("export-done")
