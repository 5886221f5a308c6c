"""The dashboard in a real browser: Debian's chromium through chromedriver (Selenium), against
`common-ops dev` (API and embedded worker, a real uvicorn) on a free port, on both databases.

Each test saves a screenshot of the page it tested in tests/artifacts/screenshots/ (kept by
the run, ignored by git)."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from service.ui import devlogin
from tests.fixtures.database import ROOT, free_port
from tests.fixtures.processes import Process, Spawner, clean_env

SCREENSHOTS = ROOT / "tests" / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
T = TypeVar("T")


@pytest.fixture(scope="session")
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in a container
        "--disable-dev-shm-usage",
        "--window-size=1400,1100",
        "--lang=en-US",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


def console(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    """The browser console's entries since the last read (reading them empties the log)."""
    # selenium leaves ChromiumDriver.get_log without annotations
    entries: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return entries


class Dashboard:
    """A running `common-ops dev`, the browser signed in to it, and an HTTP client."""

    def __init__(self, process: Process, driver: webdriver.Chrome, shots: str) -> None:
        self.process = process
        self.driver = driver
        self.url = process.url
        self.shots = shots
        self.http = httpx.Client(base_url=process.url, timeout=10.0)

    def login(self, user: str, roles: str = "") -> None:
        """The dev login (OPS_UI_DEV_LOGIN, on in `common-ops dev`): a cookie names the user.

        Returns once the browser holds the cookies for this user and these roles, so the next
        page is rendered for them (a page opened before would be the previous test's user's)."""
        self.driver.delete_all_cookies()
        self.open(f"/ui/login?user={quote(user)}&roles={quote(roles)}")

        def signed_in() -> bool:
            named = self.driver.get_cookie(devlogin.USER_COOKIE) or {}
            given = self.driver.get_cookie(devlogin.ROLES_COOKIE) or {}
            # an empty value is sent quoted ("") and kept so: only roles given are compared
            return named.get("value") == quote(user) and (
                not roles or given.get("value") == quote(roles)
            )

        wait_for(signed_in, what=f"the dev login as {user} ({roles or 'no roles'})")

    def open(self, path: str) -> None:
        self.driver.get(self.url + path)

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}-{self.shots}.png"
        self.driver.save_screenshot(str(path))
        return path

    def api(self, method: str, path: str, user: str = "alice", roles: str = "", **kw: Any) -> Any:
        headers = {"X-User-ID": user, **({"X-User-Roles": roles} if roles else {})}
        answer = self.http.request(method, "/api/v1/operations" + path, headers=headers, **kw)
        assert answer.status_code < 300, answer.text
        return answer.json() if answer.content else None

    def settled_task_page(self, status: str = "completed", timeout: float = 60.0) -> str:
        """Wait until the task page on screen shows the task `status` (a final one) and answer
        the task's id. The page reloads itself on each status its stream shows, so anything read
        from it before the last one can be detached under the reader, and a reload can overtake
        a navigation: read and check in the same poll."""

        def shown() -> str | None:
            box = self.driver.find_element(By.ID, "task")
            final = status in self.driver.find_element(By.ID, "status").text
            return box.get_attribute("data-id") if final else None

        return wait_for(shown, timeout=timeout, what=f"the task page showing the task {status}")

    def script_errors(self) -> list[str]:
        return [e["message"] for e in console(self.driver) if e["level"] == "SEVERE"]


def wait_for(check: Callable[[], T | None], *, timeout: float = 30.0, what: str = "") -> T:
    """Poll `check` (a page element may be replaced while it runs) until it is truthy."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (StaleElementReferenceException, WebDriverException) as error:
            last = error
        if last and not isinstance(last, Exception):
            return last  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout}s: {what}; last: {last!r}")


@pytest.fixture
def dashboard(
    database_url: str,
    dialect: str,
    tmp_path: Path,
    browser: webdriver.Chrome,
    request: pytest.FixtureRequest,
) -> Iterator[Dashboard]:
    spawner = Spawner(tmp_path)
    port = free_port()
    args = [sys.executable, "-c", "from service.cli import main; main()", "dev"]
    args += ["--host", "127.0.0.1", "--port", str(port), "--data-dir", str(tmp_path / "data")]
    # Streams end every 2 s (OPS_STREAM_MAX_SECONDS): every live page then shows that it
    # resumes where it left off (Last-Event-ID), not only that it reads a stream.
    env = clean_env(
        OPS_DATABASE_URL=database_url, OPS_LOG_LEVEL="warning", OPS_STREAM_MAX_SECONDS="2"
    )
    process = spawner.start("dev", args, env=env, port=port)
    try:
        _wait_live(process)
        board = Dashboard(process, browser, f"{dialect}")
        console(browser)  # start each test with an empty console
        yield board
        errors = board.script_errors()
        board.http.close()
        assert not errors, errors
    finally:
        # leave the page before its server goes: a live page (the queues poll them) would log
        # the refused requests of its next poll into the next test's console
        browser.get("about:blank")
        spawner.kill_all()


def _wait_live(process: Process, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive:
            raise AssertionError(f"common-ops dev exited:\n{process.output()}")
        try:
            if httpx.get(process.url + "/health/live", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"common-ops dev not live:\n{process.output()}")
