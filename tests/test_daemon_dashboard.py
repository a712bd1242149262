"""`forgebot serve` serves the dashboard at `/`, and a task the bot started from an issue carries its issue, its
pull request and its branch pages, shown on the page (in headless Chromium when /usr/bin/chromium is there)."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp
import pytest

from forgebot.api.tokens import hash_secret, new_secret
from forgebot.config import ConfigError, Settings
from forgebot.daemon import build
from forgebot.github.client import PyGithubClient
from forgebot.github.settings import bot_settings
from tests import payloads
from tests.bot_harness import REPO, BotHarness, daemon_config
from tests.dashboard_support import chromium, require_chromium
from tests.fake_github import FakeGitHub


async def test_serve_has_the_dashboard_and_github_links_in_task_json(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path, bot={"auto_pr": True}) as h:
        assert await h.deliver("issues", payloads.labeled(h.repo_payload, 1, "forge", "alice")) == 202
        await h.until_idle()
        secret = new_secret()
        h.daemon.store.token_store().create(name="dash", token_hash=hash_secret(secret), repos=(), now=1.0)
        root = h.url.removesuffix("/webhook")
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{root}/") as page:
                assert page.status == 200 and page.content_type == "text/html"
                assert "script-src 'self'" in page.headers["Content-Security-Policy"]
            async with http.get(f"{root}/api/v1/tasks") as answer:
                assert answer.status == 401, "not public unless configured"
            headers = {"Authorization": f"Bearer {secret}"}
            async with http.get(f"{root}/api/v1/tasks/1", headers=headers) as answer:
                github = (await answer.json())["github"]
        link = h.daemon.store.bot_store().get_link(1)
        web = h.gh.url
    assert link.pr_number is not None
    assert github == {
        "repo": REPO,
        "issue": 1,
        "issue_url": f"{web}/{REPO}/issues/1",
        "pr": link.pr_number,
        "pr_url": f"{web}/{REPO}/pull/{link.pr_number}",
        "pr_state": link.pr_state,
        "tree_url": f"{web}/{REPO}/tree/",
        "requester": "alice",
    }


async def test_a_bad_api_section_stops_serve_before_it_starts(tmp_path: Path) -> None:
    async with FakeGitHub() as fake:
        config = daemon_config(fake, tmp_path / "data")
        settings = Settings.model_validate({**config, "api": {"dashboard_public": "perhaps"}})
        client = PyGithubClient(api_url=fake.url, token=fake.token, write_interval=0)
        with pytest.raises(ConfigError, match=r"api\.dashboard_public"):
            build(settings, bot_settings(settings, {}), client, environ={})
    assert not (tmp_path / "data").exists(), "nothing was opened or created"


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_public_dashboard_of_serve_shows_an_issue_task_with_its_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.async_api import expect

    require_chromium()
    monkeypatch.setenv("FORGEBOT_API_DASHBOARD_PUBLIC", "true")  # BotHarness builds with os.environ
    async with BotHarness.start(tmp_path, bot={"auto_pr": True}) as h, chromium() as browser:
        page = await browser.new_page()
        await page.goto(h.url.removesuffix("/webhook") + "/")
        await expect(page.locator("#connection")).to_have_text("live", timeout=30_000)
        assert await h.deliver("issues", payloads.labeled(h.repo_payload, 1, "forge", "alice")) == 202
        card = page.locator("#task-1")
        await expect(card.locator(".title")).to_have_text("Add a slugify helper", timeout=30_000)
        await expect(card.locator(".winner-name")).to_have_text(re.compile(r"\w+"), timeout=60_000)
        await h.until_idle()
        pr = h.daemon.store.bot_store().get_link(1).pr_number
        await expect(card.locator("a.issue")).to_have_attribute("href", f"{h.gh.url}/{REPO}/issues/1")
        # The PR is opened after the task finished (no engine event says so): the page reads the task again.
        await expect(card.locator("a.pr")).to_have_text(f"PR #{pr} (open)", timeout=30_000)
        branch = card.locator("td.branch a").first
        assert (await branch.get_attribute("href") or "").startswith(f"{h.gh.url}/{REPO}/tree/forge/1-")
