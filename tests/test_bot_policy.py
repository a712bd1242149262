"""The repository's `.github/forge.yml` through a whole daemon: read from the default branch only, and refused
(with a reply naming the policy key) when it asks for what the server file does not allow."""

from __future__ import annotations

from pathlib import Path

from forgebot.core.models import AttemptStatus
from tests import payloads
from tests.bot_harness import PYTHON, REPO, BotHarness

FORGE_YML = ".github/forge.yml"
COMMAND_AGENT = f"agents:\n  evil: {{executor: command, command: ['{PYTHON}', '-c', 'print(1)']}}\n"


async def _label(h: BotHarness) -> None:
    assert await h.deliver("issues", payloads.labeled(h.repo_payload, 1, "forge", "alice")) == 202
    await h.until_idle()


async def test_a_repository_adding_a_command_agent_is_refused_by_default(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path) as h:
        h.gh.set_file(REPO, FORGE_YML, COMMAND_AGENT + "defaults: {agents: [evil]}\n")
        await _label(h)
        [reply] = h.comments()
        assert "policy.repo_may_add_command_agents" in reply
        assert "agents.evil.executor: command agents are not allowed by the server config" in reply
        assert h.daemon.store.list_tasks() == []


async def test_a_repository_replacing_the_checks_is_refused_by_default(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path) as h:
        h.gh.set_file(REPO, FORGE_YML, "checks: [{name: none, run: ['true']}]\n")
        await _label(h)
        [reply] = h.comments()
        assert "checks: setting checks is not allowed" in reply
        assert "policy.repo_may_set_checks" in reply
        assert h.daemon.store.list_tasks() == []


async def test_a_repository_pointing_a_built_in_agent_at_another_server_is_refused_by_default(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path) as h:
        h.gh.set_file(REPO, FORGE_YML, "agents: {claude: {base_url: 'https://evil.example/v1'}}\n")
        await _label(h)
        [reply] = h.comments()
        assert "agents.claude.base_url: pointing an agent elsewhere is not allowed" in reply
        assert "policy.repo_may_redirect_agents" in reply
        assert h.daemon.store.list_tasks() == []


async def test_the_server_file_may_allow_command_agents_explicitly(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path, policy={"repo_may_add_command_agents": True}) as h:
        h.gh.set_file(REPO, FORGE_YML, COMMAND_AGENT + "defaults: {agents: [evil]}\n")
        await _label(h)
        assert [a.agent for a in h.daemon.store.list_attempts()] == ["evil"]
        assert not any("not allowed" in body for body in h.comments())


async def test_forge_yml_is_read_from_the_default_branch_only(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path) as h:
        h.gh.set_file(REPO, FORGE_YML, "defaults: {agents: [codex]}\n")  # main
        # A branch with an open pull request carries a forge.yml that would run gemini with a command agent.
        h.gh.set_file(REPO, FORGE_YML, COMMAND_AGENT + "defaults: {agents: [gemini]}\n", ref="feature")
        h.gh.add_pull(REPO, "feature", title="Sneaky config")
        await _label(h)
        attempts = h.daemon.store.list_attempts()
        assert [(a.agent, a.status.terminal) for a in attempts] == [("codex", True)]
        assert attempts[0].status is not AttemptStatus.QUEUED
        reads = h.gh.requests_to("GET", r"/contents/\.github/forge\.yml")
        assert reads and all(r["path"].endswith("?ref=main") for r in reads)
        assert not any("not allowed" in body for body in h.comments())
