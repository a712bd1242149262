"""A server like `forgebot serve` composes it for the dashboard tests: a real engine and store, the REST API and
the dashboard on one aiohttp app on 127.0.0.1, fake agents that take a couple of seconds; and a real headless
Chromium (Debian's /usr/bin/chromium, driven by Playwright) to look at it.

    async with DashboardServer.start(tmp_path) as server, chromium() as browser:
        page = await browser.new_page()
        await page.goto(server.url)
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from forgebot.config import Settings
from forgebot.store.bot import IssueTask
from tests.api_support import ApiServer, fake
from tests.api_support import settings as api_settings

CHROMIUM = "/usr/bin/chromium"  # Debian's; FORGEBOT_TEST_CHROMIUM points elsewhere (e.g. a hosted runner's Chrome)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WEB_URL = "https://github.example"

AGENTS: dict[str, Any] = {
    # succeeds: a new file, usage and cost reported, checks pass
    "steady": fake("sleep", "2", "write", "steady.txt", "done", "usage", "1200", "300", "cost", "0.012"),
    # fails: breaks the repository's test, so the check fails
    "clumsy": fake("sleep", "2.5", "write", "app.py", "def answer() -> int:\n    return 41"),
    # keeps running until cancelled or the server stops
    "sleeper": fake("sleep", "120"),
}


def settings(**overrides: Any) -> Settings:
    dashboard = {"agents": AGENTS, "defaults": {"agents": ["steady"]}, "limits": {"attempt_timeout": "3m"}}
    return api_settings(**{**dashboard, **overrides})


class DashboardServer(ApiServer):
    """ApiServer with the dashboard, the bot store's GitHub links and, when asked, public reads."""

    @classmethod
    @contextlib.asynccontextmanager
    async def start(  # type: ignore[override]
        cls, root: Path, *, public: bool = False, heartbeat: float = 0.5
    ) -> AsyncIterator[DashboardServer]:
        config = settings(api={"dashboard_public": public})
        async with super().start(
            root, config, heartbeat, dashboard=True, web_url=WEB_URL, public_reads=public
        ) as server:
            assert isinstance(server, DashboardServer)
            yield server

    def client(self, token: str | None = None) -> aiohttp.ClientSession:
        """A client with a cookie jar that keeps cookies from 127.0.0.1 (aiohttp's default refuses IP hosts)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return aiohttp.ClientSession(base_url=self.url, headers=headers, cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def create_task(self, token: str, title: str, agents: list[str]) -> dict[str, Any]:
        async with self.client(token) as http:
            body = {"title": title, "description": "from the dashboard test", "repo": str(self.repo), "agents": agents}
            async with http.post("/api/v1/tasks", json=body) as answer:
                assert answer.status == 201, await answer.text()
                created: dict[str, Any] = await answer.json()
                return created

    def link_issue(self, task_id: int, issue: int, pr: int | None = None) -> None:
        """What the GitHub bot records for a task it started from an issue (and later its pull request)."""
        bot = self.store.bot_store()
        bot.link(IssueTask(task_id=task_id, repo="acme/widgets", issue=issue, requester="alice", created_at=1.0))
        if pr is not None:
            bot.update_link(task_id, pr_number=pr, pr_state="open")


def chromium_path() -> str:
    return os.environ.get("FORGEBOT_TEST_CHROMIUM", CHROMIUM)


def require_chromium() -> None:
    """Skip when Debian's chromium is not installed; under CI=true that is a failure instead."""
    path = chromium_path()
    if os.path.exists(path):
        return
    message = f"{path} is missing: apt-get install -y chromium (the browser tests drive Debian's chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """A fresh headless Chromium context (its own throw-away profile), 1280 by 900 pixels."""
    require_chromium()
    from playwright.async_api import async_playwright

    with tempfile.TemporaryDirectory(prefix="forgebot-chromium-") as profile:
        async with async_playwright() as playwright:
            context = await playwright.chromium.launch_persistent_context(
                profile,
                executable_path=chromium_path(),
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1280, "height": 900},
            )
            try:
                yield context
            finally:
                await context.close()
