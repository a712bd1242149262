"""Credentials never reach what forgebot posts: a GitHub App installation token minted while running, printed by
an agent, shows up as *** in the progress comment's log tail."""

from __future__ import annotations

from pathlib import Path

from forgebot.github.client import PyGithubClient
from tests import payloads
from tests.bot_harness import REPO, BotHarness, bare_remote, fake_agent, seed
from tests.fake_github import FakeGitHub
from tests.support import rsa_key_pair

APP_ID = 4242


async def test_an_installation_token_printed_by_an_agent_never_reaches_a_comment(tmp_path: Path) -> None:
    private, public = rsa_key_pair()
    async with FakeGitHub() as gh:
        seed(gh, bare_remote(tmp_path))
        gh.add_app(APP_ID, public)
        gh.install(1, REPO)
        client = PyGithubClient(api_url=gh.url, app_id=APP_ID, private_key=private, write_interval=0, backoff=0.01)
        token = await client.git_token(REPO)  # minted at run time, like every App token; the daemon reuses it
        assert token and token != gh.token
        # An agent that got hold of the token somehow prints it, then fails: its log tail is shown.
        agents = {"claude": fake_agent("say", f"pushing with x-access-token:{token}@github.com", "exit", "1")}
        async with BotHarness.start(tmp_path, gh=gh, agents=agents, client=lambda _gh: client) as h:
            label = payloads.labeled(h.repo_payload, 1, "forge:claude", "alice")
            assert await h.deliver("issues", label) == 202
            await h.until_idle()
            bodies = [c.body for c in gh.repos[REPO].comment_list(1)]
            assert any("pushing with x-access-token:***@github.com" in body for body in bodies)
            assert not any(token in body for body in bodies)
            assert gh.token_requests == [1]  # the daemon used the very token the agent printed
