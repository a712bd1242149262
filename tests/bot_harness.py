"""A whole daemon for end-to-end tests: the real aiohttp app on loopback, PyGithub talking to the HTTP fake of
GitHub, a bare repository standing in as the remote, and fake agent programs doing the work.

    async with BotHarness.start(tmp_path) as h:
        await h.deliver("issues", payloads.labeled(h.repo_payload, 1, "forge", "alice"))
        await h.until_idle()
        assert h.gh.actions == [...]
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from forgebot.config import Settings
from forgebot.daemon import Daemon, build
from forgebot.github.client import PyGithubClient
from forgebot.github.settings import BotSettings, bot_settings
from tests import payloads
from tests.fake_github import DEFAULT_LOGIN, FakeGitHub
from tests.support import FAKE_AGENT, PYTHON, make_repo

SECRET = "webhook-secret-for-tests"
REPO = "acme/widgets"
_deliveries = itertools.count(1)


def fake_agent(*steps: str) -> dict[str, Any]:
    return {"executor": "command", "command": [PYTHON, FAKE_AGENT, *steps]}


def three_agents() -> dict[str, Any]:
    """Three agents that each write a different file, at different speeds and costs; codex breaks the test."""
    return {
        "claude": fake_agent("sleep", "0.3", "write", "slug.py", "def slugify(s): return s", "usage", "1200", "300",
                             "cost", "0.012"),
        "codex": fake_agent("sleep", "0.1", "write", "app.py", "def answer() -> int:\n    return 41", "usage", "800",
                            "200", "cost", "0.004"),
        "gemini": fake_agent("sleep", "0.5", "write", "slug.py", "def slugify(s):\n    return s.lower()", "usage",
                             "2000", "500", "cost", "0.02"),
    }  # fmt: skip


def daemon_config(
    fake: FakeGitHub,
    data_dir: Path,
    *,
    agents: dict[str, Any] | None = None,
    bot: dict[str, Any] | None = None,
    grace: float = 5.0,
    schedule: dict[str, Any] | None = None,
    github: dict[str, Any] | None = None,
    templates: dict[str, Any] | None = None,
    policy: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The server file's content for a daemon pointed at `fake` (also written as YAML for a `serve` process).
    `github` entries replace the github section's (None values drop a key)."""
    section = {"token": fake.token, "webhook_secrets": [SECRET], "api_url": fake.url, "write_interval": 0}
    section = {k: v for k, v in {**section, **(github or {})}.items() if v is not None}
    extra = {"policy": policy} if policy is not None else {}
    return {
        **extra,
        "templates": templates or {},
        "agents": agents or three_agents(),
        "defaults": {"agents": ["claude", "codex", "gemini"]},
        "checks": [{"name": "tests", "run": [PYTHON, "-m", "unittest", "-q"], "timeout": 60}],
        "data_dir": str(data_dir),
        "github": section,
        "repos": {"allow": ["acme/*"]},
        "server": {"shutdown_grace": grace},
        "bot": {"progress_interval": 0.2, **(bot or {})},
        "schedule": schedule or {},
    }


def seed(fake: FakeGitHub, remote: Path) -> None:
    fake.add_repo(REPO, clone_url=str(remote))
    fake.set_permission(REPO, "alice", "write")
    fake.set_permission(REPO, "mallory", "read")
    fake.add_issue(REPO, "Add a slugify helper", "Please add slugify().", user="alice")


def bare_remote(tmp_path: Path) -> Path:
    remote = tmp_path / "remote.git"
    if not remote.exists():
        source = make_repo(tmp_path / "source")
        subprocess.run(["git", "clone", "-q", "--bare", str(source), str(remote)], check=True)
    return remote


@dataclass
class BotHarness:
    gh: FakeGitHub
    daemon: Daemon
    url: str
    remote: Path
    repo_payload: dict[str, Any]

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls,
        tmp_path: Path,
        *,
        agents: dict[str, Any] | None = None,
        bot: dict[str, Any] | None = None,
        gh: FakeGitHub | None = None,
        data_dir: Path | None = None,
        grace: float = 5.0,
        schedule: dict[str, Any] | None = None,
        github: dict[str, Any] | None = None,
        client: Callable[[FakeGitHub], PyGithubClient] | None = None,
        templates: dict[str, Any] | None = None,
        policy: dict[str, Any] | None = None,
    ) -> AsyncIterator[BotHarness]:
        remote = bare_remote(tmp_path)
        own_fake = gh is None
        fake = gh or FakeGitHub()
        if own_fake:
            await fake.__aenter__()
            seed(fake, remote)
        settings = Settings.model_validate(
            daemon_config(
                fake,
                data_dir or tmp_path / "data",
                agents=agents,
                bot=bot,
                grace=grace,
                schedule=schedule,
                github=github,
                templates=templates,
                policy=policy,
            )
        )
        behaviour = bot_settings(settings, {})
        if client is None:
            github_client = PyGithubClient(api_url=fake.url, token=fake.token, write_interval=0, backoff=0.01)
        else:
            github_client = client(fake)
        daemon = build(settings, behaviour, github_client, environ=dict(os.environ))
        runner = web.AppRunner(daemon.app, shutdown_timeout=1)
        await runner.setup()
        await daemon.start()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        repo_payload = payloads.repository(REPO, str(remote))
        harness = cls(fake, daemon, f"http://127.0.0.1:{port}/webhook", remote, repo_payload)
        try:
            yield harness
        finally:
            with contextlib.suppress(Exception):
                await daemon.stop()
            await runner.cleanup()
            if own_fake:
                await fake.__aexit__(None, None, None)

    @property
    def behaviour(self) -> BotSettings:
        return self.daemon.behaviour

    async def deliver(
        self, event: str, payload: dict[str, Any], *, delivery: str | None = None, secret: str = SECRET
    ) -> int:
        body, signature = payloads.signed(payload, secret)
        headers = payloads.headers(event, delivery or f"delivery-{next(_deliveries)}", signature)
        async with aiohttp.ClientSession() as session, session.post(self.url, data=body, headers=headers) as answer:
            return answer.status

    async def until(self, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError("timed out; actions so far:\n" + "\n".join(self.gh.actions))
            await asyncio.sleep(0.05)

    async def until_idle(self, timeout: float = 60.0) -> None:
        """Until no delivery is being handled, no attempt is queued or running, and the publisher is done."""
        deadline = time.monotonic() + timeout
        while True:
            attempts = await asyncio.to_thread(self.daemon.store.list_attempts)
            busy = self.daemon.webhooks.in_flight or any(not a.status.terminal for a in attempts)
            if not busy:
                await self.daemon.bot.publisher.settle()
                if not self.daemon.webhooks.in_flight:
                    return
            if time.monotonic() > deadline:
                raise AssertionError("still busy; actions so far:\n" + "\n".join(self.gh.actions))
            await asyncio.sleep(0.05)

    def comments(self, number: int = 1) -> list[str]:
        """What forgebot posted on the issue (people's comments left out)."""
        return [c.body for c in self.gh.repos[REPO].comment_list(number) if c.user == DEFAULT_LOGIN]

    def remote_branches(self) -> list[str]:
        out = subprocess.run(
            ["git", "-C", str(self.remote), "for-each-ref", "--format=%(refname:short)", "refs/heads/"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return sorted(out.split())


GOLDEN = Path(__file__).parent / "golden" / "bot"


def normalized(actions: list[str]) -> list[str]:
    """The fake's action log with runs of the same line folded into one: how many progress edits land between
    two events depends on timing, what they are does not."""
    folded: list[str] = []
    for line in actions:
        if not folded or folded[-1] != line:
            folded.append(line)
    return folded


def assert_golden(name: str, actions: list[str]) -> None:
    """Compare with tests/golden/bot/NAME.txt; FORGEBOT_UPDATE_GOLDEN=1 rewrites it (review the diff)."""
    path = GOLDEN / f"{name}.txt"
    text = "\n".join(normalized(actions)) + "\n"
    if os.environ.get("FORGEBOT_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"{path} is missing: run with FORGEBOT_UPDATE_GOLDEN=1"
    assert text == path.read_text(), f"actions differ from {path}:\n{text}"
