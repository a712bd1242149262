"""The dashboard in a real headless Chromium (Debian's chromium, driven by Playwright) against a real server:
sign in, watch a task submitted through the API run to its comparison without reloading, open a log tail, and
see an issue title that holds HTML shown as text. Skipped when /usr/bin/chromium is missing, except on CI."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.dashboard_support import WEB_URL, DashboardServer, chromium, require_chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(180)]

HOSTILE_TITLE = "Fix <img src=x onerror=alert(1)> in titles"
SCREENSHOT = "/tmp/dashboard.png"
SLOW = 30_000  # ms: generous waits for agents that take a couple of seconds on a busy machine
STARTED = re.compile(r"^(queued|preparing|running|checking)$")


@pytest.fixture(autouse=True)
def _chromium_is_there() -> None:
    require_chromium()  # before a server is started for nothing


class Watch:
    """What the page did that it must not: dialogs (an alert from injected HTML), script errors, CSP reports."""

    def __init__(self, page: Any) -> None:
        self.problems: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("console", self._console)

    async def _dialog(self, dialog: Any) -> None:
        self.problems.append(f"dialog: {dialog.message}")
        await dialog.dismiss()

    def _console(self, message: Any) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.problems.append(f"CSP: {message.text}")


async def status_of(page: Any, path: str, method: str = "GET") -> int:
    """What the API answers this page's own fetch (same origin, its cookies)."""
    script = "([path, method]) => fetch(path, {method, headers: {'X-Requested-With': 'forgebot-dashboard'}})"
    status: int = await page.evaluate(script + ".then((r) => r.status)", [path, method])
    return status


async def test_live_dashboard_from_sign_in_to_comparison(tmp_path: Path) -> None:
    from playwright.async_api import expect

    async with DashboardServer.start(tmp_path) as server, chromium() as browser:
        token = server.token("dash")
        page = await browser.new_page()
        watch = Watch(page)
        await page.goto(server.url)

        # Signed out: the login form, and the API refuses this browser.
        await expect(page.locator("#login-form")).to_be_visible()
        assert await status_of(page, "api/v1/tasks") == 401
        assert await status_of(page, "api/v1/events") == 401

        await page.fill("#token", "fgb_wrong")
        await page.click("#login-form button[type=submit]")
        await expect(page.locator("#login-error")).to_contain_text("not accepted")
        await page.fill("#token", token)
        await page.click("#login-form button[type=submit]")
        await expect(page.locator("#who")).to_have_text("signed in as dash")
        await expect(page.locator("#login")).to_be_hidden()
        await expect(page.locator("#connection")).to_have_text("live", timeout=SLOW)
        await expect(page.locator("#empty")).to_be_visible()
        await page.evaluate("() => { window.stillTheSamePage = true; }")

        # A task arrives through the API while the page is open.
        task = await server.create_task(token, HOSTILE_TITLE, ["steady", "clumsy"])
        server.link_issue(task["id"], issue=7)
        steady, clumsy = (a["id"] for a in task["attempts"])
        card = page.locator(f"#task-{task['id']}")
        await expect(card.locator(".title")).to_have_text(HOSTILE_TITLE)
        for attempt in (steady, clumsy):
            await expect(page.locator(f"#attempt-{attempt} .status .badge")).to_have_text(STARTED, timeout=SLOW)

        await expect(page.locator(f"#attempt-{steady} .status .badge")).to_have_text("succeeded", timeout=SLOW)
        await expect(page.locator(f"#attempt-{clumsy} .status .badge")).to_have_text("failed", timeout=SLOW)
        await expect(card.locator("header .badge")).to_have_text("succeeded", timeout=SLOW)
        await expect(card.locator(".winner-name")).to_have_text("steady", timeout=SLOW)
        await expect(page.locator(f"#attempt-{steady}")).to_have_class(re.compile(r"\bwinner\b"))
        await expect(page.locator(f"#attempt-{steady} .diff")).to_contain_text("1 file +1")
        await expect(page.locator(f"#attempt-{steady} .cost")).to_have_text("$0.01")
        await expect(page.locator(f"#attempt-{steady} .checks")).to_have_text("✓ tests")
        await expect(page.locator(f"#attempt-{clumsy} .checks")).to_have_text("✗ tests")
        issue = card.locator("a.issue")
        await expect(issue).to_have_text("acme/widgets#7")
        assert await issue.get_attribute("href") == f"{WEB_URL}/acme/widgets/issues/7"

        # The log tail opens under its attempt.
        await page.click(f"#attempt-{steady} .log-toggle")
        await expect(page.locator(f"#log-{steady} pre.log")).to_contain_text("thinking for 2", timeout=SLOW)
        await expect(page.locator(f"#attempt-{steady} .log-toggle")).to_have_attribute("aria-expanded", "true")

        # The hostile title stayed text: no element was made from it and nothing ran.
        assert await page.locator("img").count() == 0
        assert await page.evaluate("() => window.stillTheSamePage") is True, "the page was never reloaded"
        await page.screenshot(path=SCREENSHOT, full_page=True)

        # Signing out clears the cookie: the login form again, and the API refuses this browser again.
        await page.click("#sign-out")
        await expect(page.locator("#login-form")).to_be_visible()
        await expect(page.locator(".task")).to_have_count(0)
        assert await status_of(page, "api/v1/tasks") == 401
        assert watch.problems == []


async def test_public_dashboard_shows_tasks_without_sign_in_and_refuses_writes_politely(tmp_path: Path) -> None:
    from playwright.async_api import expect

    async with DashboardServer.start(tmp_path, public=True) as server, chromium() as browser:
        task = await server.create_task(server.token("writer"), "A long task anyone may watch", ["sleeper"])
        (attempt,) = (a["id"] for a in task["attempts"])
        page = await browser.new_page()
        watch = Watch(page)
        await page.goto(server.url)

        await expect(page.locator(f"#task-{task['id']} .title")).to_have_text("A long task anyone may watch")
        await expect(page.locator("#login")).to_be_hidden()
        await expect(page.locator("#who")).to_have_text("read-only")
        await expect(page.locator("#sign-in")).to_be_visible()
        badge = page.locator(f"#attempt-{attempt} .status .badge")
        await expect(badge).to_have_text("running", timeout=SLOW)
        elapsed = page.locator(f"#attempt-{attempt} .elapsed")
        shown = await elapsed.text_content()
        await expect(elapsed).not_to_have_text(shown or "", timeout=5000)  # ticks locally, no event needed

        await page.click(f"#attempt-{attempt} .cancel-attempt")
        await expect(page.locator("#notice")).to_contain_text("sign in with an API token")
        assert await status_of(page, f"api/v1/attempts/{attempt}/cancel", "POST") == 401
        await expect(badge).to_have_text("running")
        assert not (await server.engine.attempts(task["id"]))[0].status.terminal

        # Signed in, the same button works (the cookie and the dashboard's write header).
        await page.click("#sign-in")
        await page.fill("#token", server.token("operator"))
        await page.click("#login-form button[type=submit]")
        await expect(page.locator("#who")).to_have_text("signed in as operator")
        await page.click(f"#attempt-{attempt} .cancel-attempt")
        await expect(badge).to_have_text("cancelled", timeout=SLOW)
        assert watch.problems == []
