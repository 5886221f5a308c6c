"""Schedules and templates driven in Chromium: a schedule made from its form (a wrong field
shown with its reason, then corrected), its next fire times, paused and resumed, edited and
deleted; a template made from its form, edited to version 2 and run, landing on its task."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.select import Select

from tests.browser.conftest import Dashboard, console, wait_for


def _field(board: Dashboard, element_id: str) -> WebElement:
    return board.driver.find_element(By.ID, element_id)


def _type(board: Dashboard, element_id: str, text: str) -> None:
    box = _field(board, element_id)
    box.clear()
    box.send_keys(text)


def _expected_refusal(board: Dashboard, path: str, status: int = 422) -> None:
    """Chromium logs each error answer of a fetch as a console error: take those the test
    provoked out of the log (the fixture fails a test on any other console error)."""
    severe = [e["message"] for e in console(board.driver) if e["level"] == "SEVERE"]
    assert severe, "no refused request logged"
    for message in severe:
        assert f"/api/v1/operations{path} " in message, message
        assert f"status of {status}" in message, message


def _state(board: Dashboard, schedule_id: str) -> str:
    row = f'#schedules tr[data-id="{schedule_id}"] .state'
    return board.driver.find_element(By.CSS_SELECTOR, row).text


def test_schedule_from_its_form_paused_resumed_edited_deleted(dashboard: Dashboard) -> None:
    dashboard.login("alice")
    dashboard.open("/ui/schedules")
    dashboard.driver.find_element(By.ID, "new-schedule").click()
    wait_for(lambda: dashboard.driver.find_elements(By.ID, "sf-cron"), what="the generated form")
    _type(dashboard, "sf-name", "Nightly noop")
    _type(dashboard, "sf-cron", "every night please")
    _type(dashboard, "sf-timeZone", "Europe/Berlin")
    Select(_field(dashboard, "sf-taskType")).select_by_value("noop")
    _field(dashboard, "plan-submit").click()

    note = wait_for(
        lambda: dashboard.driver.find_elements(By.ID, "sf-cron-error"), what="the cron's error"
    )[0]
    assert "cron must have 5 fields" in note.text  # the API's reason, by its field
    assert note.text.startswith("✖ Error:")  # told in words, not by colour alone
    cron = _field(dashboard, "sf-cron")
    assert cron.get_attribute("aria-invalid") == "true"
    assert "sf-cron-error" in (cron.get_attribute("aria-describedby") or "")
    assert dashboard.driver.switch_to.active_element == cron  # focus on the wrong field
    assert dashboard.api("GET", "/schedules")["total"] == 0  # nothing was made
    _expected_refusal(dashboard, "/schedules")
    dashboard.screenshot("schedule-form")

    _type(dashboard, "sf-cron", "0 3 * * *")
    _field(dashboard, "plan-submit").click()
    wait_for(
        lambda: (
            "/ui/schedules/" in dashboard.driver.current_url
            and "/new" not in dashboard.driver.current_url
        ),
        what="the new schedule's page",
    )
    [made] = dashboard.api("GET", "/schedules")["items"]
    assert made["cron"] == "0 3 * * *"
    assert made["timeZone"] == "Europe/Berlin"
    assert made["owner"] == "alice"
    detail = dashboard.api("GET", f"/schedules/{made['id']}")
    fire_times = dashboard.driver.find_elements(By.CSS_SELECTOR, "#next li")
    assert len(fire_times) == 5
    first = fire_times[0].find_element(By.TAG_NAME, "time").get_attribute("datetime") or ""
    assert first[:19] == detail["nextFireTimes"][0]["utc"][:19]
    assert "03:00:00 Europe/Berlin" in fire_times[0].text

    dashboard.open("/ui/schedules")
    row = f'#schedules tr[data-id="{made["id"]}"]'
    assert len(dashboard.driver.find_elements(By.CSS_SELECTOR, f"{row} .next li")) == 3
    assert "active" in _state(dashboard, made["id"])
    dashboard.screenshot("schedules")
    dashboard.driver.find_element(By.CSS_SELECTOR, f'{row} [data-schedule-action="pause"]').click()
    wait_for(lambda: "paused" in _state(dashboard, made["id"]), what="the row saying paused")
    assert dashboard.api("GET", f"/schedules/{made['id']}")["status"] == "paused"
    assert "none while paused" in dashboard.driver.find_element(By.CSS_SELECTOR, row).text
    button = f'{row} [data-schedule-action="resume"]'
    dashboard.driver.find_element(By.CSS_SELECTOR, button).click()
    wait_for(lambda: "active" in _state(dashboard, made["id"]), what="the row saying active")
    resumed = dashboard.api("GET", f"/schedules/{made['id']}")
    assert resumed["status"] == "active"

    # edit: only the changed field is sent (PATCH), and the page shows the result
    dashboard.open(f"/ui/schedules/{made['id']}")
    wait_for(lambda: _field(dashboard, "sf-name").get_attribute("value"), what="filled form")
    assert _field(dashboard, "sf-cron").get_attribute("value") == "0 3 * * *"
    _type(dashboard, "sf-name", "Nightly noop, renamed")
    _field(dashboard, "plan-submit").click()
    wait_for(
        lambda: dashboard.driver.find_element(By.TAG_NAME, "h1").text == "Nightly noop, renamed",
        what="the renamed schedule",
    )
    changed = dashboard.api("GET", f"/schedules/{made['id']}")
    assert changed["version"] == resumed["version"] + 1
    assert changed["cron"] == "0 3 * * *"

    # delete, after a confirmation (declined once)
    _field(dashboard, "schedule-delete").click()
    wait_for(lambda: _field(dashboard, "confirm").is_displayed(), what="the confirmation")
    _field(dashboard, "confirm-no").click()
    assert dashboard.api("GET", "/schedules")["total"] == 1
    _field(dashboard, "schedule-delete").click()
    wait_for(lambda: _field(dashboard, "confirm").is_displayed(), what="the confirmation")
    _field(dashboard, "confirm-yes").click()
    wait_for(
        lambda: dashboard.driver.current_url.endswith("/ui/schedules"), what="back to the list"
    )
    assert dashboard.api("GET", "/schedules")["total"] == 0


def test_template_from_its_form_edited_to_version_2_and_run(dashboard: Dashboard) -> None:
    dashboard.login("root", "admin")
    dashboard.open("/ui/templates")
    dashboard.driver.find_element(By.ID, "new-template").click()
    wait_for(lambda: dashboard.driver.find_elements(By.ID, "tf-name"), what="the generated form")
    _type(dashboard, "tf-name", "Short nap")
    _type(dashboard, "tf-description", "Sleeps a little")
    Select(_field(dashboard, "tf-taskType")).select_by_value("sleep")
    _type(dashboard, "tf-params", '{"seconds": "long"}')
    _field(dashboard, "plan-submit").click()
    note = wait_for(
        lambda: dashboard.driver.find_elements(By.ID, "tf-params-error"), what="the params' error"
    )[0]
    assert "seconds" in note.text
    _expected_refusal(dashboard, "/templates")
    _type(dashboard, "tf-params", '{"seconds": 0}')
    _type(dashboard, "tf-optionalFields", "seconds")
    _field(dashboard, "plan-submit").click()
    wait_for(
        lambda: (
            "version 1" in _field(dashboard, "version").text
            if dashboard.driver.find_elements(By.ID, "version")
            else None
        ),
        what="the new template's page",
    )
    template_id = _field(dashboard, "template").get_attribute("data-id")
    made = dashboard.api("GET", f"/templates/{template_id}")
    assert made["createdBy"] == "root"
    assert made["params"] == {"seconds": 0}

    # edit: a new version
    assert _field(dashboard, "tf-name").get_attribute("value") == "Short nap"
    _type(dashboard, "tf-params", '{"seconds": 0.2}')
    _field(dashboard, "plan-submit").click()
    wait_for(lambda: "version 2" in _field(dashboard, "version").text, what="version 2")
    versions = dashboard.driver.find_elements(By.CSS_SELECTOR, "#versions tbody tr")
    assert [v.get_attribute("data-version") for v in versions] == ["2", "1"]
    assert dashboard.api("GET", f"/templates/{template_id}")["params"] == {"seconds": 0.2}
    dashboard.driver.execute_script("window.scrollTo(0, 0)")
    dashboard.screenshot("template-detail")

    dashboard.open("/ui/templates")
    row = f'#templates tr[data-id="{template_id}"]'
    listed = dashboard.driver.find_element(By.CSS_SELECTOR, row)
    assert "v2" in listed.text
    assert "by root" in listed.text
    dashboard.screenshot("templates")

    # run now, from its page, as a user without the admin role: it lands on the task
    dashboard.login("alice")
    dashboard.open(f"/ui/templates/{template_id}")
    assert not dashboard.driver.find_elements(By.ID, "plan-form")  # alice may not change it
    _field(dashboard, "run-now").click()
    task_id = dashboard.settled_task_page()
    assert dashboard.driver.current_url.endswith(f"/ui/tasks/{task_id}")
    task = dashboard.api("GET", f"/tasks/{task_id}")
    assert task["templateId"] == template_id
    assert task["templateVersion"] == 2
    assert task["requestedBy"] == "alice"
    assert task["params"] == {"seconds": 0.2}


def test_an_edit_keeps_a_template_the_editor_may_not_use(dashboard: Dashboard) -> None:
    template = dashboard.api(
        "POST",
        "/templates",
        user="root",
        roles="admin",
        json={"name": "Ops nap", "taskType": "sleep", "requiredRole": "ops"},
    )
    made = dashboard.api(
        "POST",
        "/schedules",
        user="alice",
        roles="ops",
        json={"name": "Alice's", "cron": "0 3 * * *", "templateId": template["id"]},
    )
    dashboard.login("root", "admin")  # an admin, without the template's role
    dashboard.open(f"/ui/schedules/{made['id']}")
    wait_for(lambda: _field(dashboard, "sf-name").get_attribute("value"), what="filled form")
    assert _field(dashboard, "sf-templateId").get_attribute("value") == template["id"]
    _type(dashboard, "sf-name", "Alice's, renamed by root")
    _field(dashboard, "plan-submit").click()
    wait_for(
        lambda: "renamed by root" in dashboard.driver.find_element(By.TAG_NAME, "h1").text,
        what="the renamed schedule",
    )
    changed = dashboard.api("GET", f"/schedules/{made['id']}", user="alice")
    assert changed["templateId"] == template["id"]
    assert changed["name"] == "Alice's, renamed by root"
