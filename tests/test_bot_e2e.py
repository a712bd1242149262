"""End to end: signed webhook deliveries in, comments, reactions, pull requests and branches out, compared with
golden action logs (tests/golden/bot/). The daemon, PyGithub, git and the agent programs are all real."""

from __future__ import annotations

import asyncio
from pathlib import Path

from forgebot.core.models import AttemptStatus
from tests import payloads
from tests.bot_harness import REPO, BotHarness, assert_golden, fake_agent

S = AttemptStatus


def slow_agents(seconds: str = "2") -> dict[str, object]:
    return {
        "claude": fake_agent("sleep", seconds, "write", "slug.py", "def slugify(s): return s"),
        "codex": fake_agent("sleep", seconds, "write", "other.py", "x = 1"),
        "gemini": fake_agent("sleep", seconds, "write", "third.py", "y = 2"),
    }


async def _label(h: BotHarness, agents: str = "") -> None:
    label = f"forge:{agents}" if agents else "forge"
    assert await h.deliver("issues", payloads.labeled(h.repo_payload, 1, label, "alice")) == 202


async def _comment(h: BotHarness, body: str, sender: str = "alice", *, pull: int | None = None) -> None:
    """The comment exists on GitHub (as it would), then its webhook arrives."""
    number = pull or 1
    comment = h.gh.add_comment(REPO, number, body, user=sender)
    payload = payloads.commented(h.repo_payload, number, body, sender, comment_id=comment.id, pull=pull is not None)
    assert await h.deliver("issue_comment", payload) in (200, 202)


def _pulls(h: BotHarness) -> list[int]:
    return [n for n, issue in h.gh.repos[REPO].issues.items() if issue.pull is not None]


async def _statuses(h: BotHarness) -> list[tuple[str, S]]:
    return [(a.agent, a.status) for a in await h.daemon.engine.attempts(1)]


async def _until_running(h: BotHarness, count: int = 3) -> None:
    async def running() -> bool:
        return sum(s is S.RUNNING for _, s in await _statuses(h)) >= count

    for _ in range(400):
        if await running():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"attempts never ran: {await _statuses(h)}")


async def test_label_runs_three_attempts_and_opens_the_winners_pr(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path, bot={"auto_pr": True}) as h:
        await _label(h)
        await h.until_idle()
        assert_golden("label_to_pr", h.gh.actions)
        [progress] = h.comments()
        assert progress.startswith("<!-- forgebot:task=1 kind=progress -->")
        for expected in ("claude", "codex", "gemini", "Comparison", "checks failed", "$0.0360"):
            assert expected in progress, expected
        assert h.remote_branches() == ["forge/1-claude", "forge/1-codex", "forge/1-gemini", "main"]
        pull, body = h.gh.pull(REPO, 2), h.gh.repos[REPO].issues[2].body
        assert (pull.head, pull.base, pull.draft) == ("forge/1-claude", "main", True)
        assert "Closes #1" in body and "forgebot:task=1 kind=pr" in body
        assert pull.requested_reviewers == ["alice"]


async def test_label_with_agents_names_them(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path) as h:
        await _label(h, "gemini,claude")
        await h.until_idle()
        assert await _statuses(h) == [("gemini", S.SUCCEEDED), ("claude", S.SUCCEEDED)]
        assert not _pulls(h)  # no auto_pr: the maintainer picks


# The golden logs of a command on a running task have its reaction before the first progress edit: a progress
# interval well above the time a command takes to arrive keeps that order on a loaded machine.
COMMAND_FIRST = {"progress_interval": 1.0}


async def test_fork_on_a_running_task(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path, agents=slow_agents(), bot=COMMAND_FIRST) as h:
        await _label(h)
        await _until_running(h)
        await _comment(h, "Another go please:\n/forge fork gemini --model gemini-2.5-pro")
        await h.until_idle()
        attempts = await h.daemon.engine.attempts(1)
        assert [(a.agent, a.branch, a.status) for a in attempts][-1] == ("gemini", "forge/1-gemini-2", S.SUCCEEDED)
        assert attempts[-1].profile.model == "gemini-2.5-pro"
        assert "forge/1-gemini-2" in h.comments()[0]
        assert "forge/1-gemini-2" in h.remote_branches()
        assert_golden("fork_running", h.gh.actions)


async def test_cancel_stops_every_attempt(tmp_path: Path) -> None:
    agents = {name: fake_agent("hang") for name in ("claude", "codex", "gemini")}
    async with BotHarness.start(tmp_path, agents=agents, bot=COMMAND_FIRST) as h:
        await _label(h)
        await _until_running(h)
        await _comment(h, "/forge cancel")
        await h.until_idle()
        assert {s for _, s in await _statuses(h)} == {S.CANCELLED}
        assert "cancelled" in h.comments()[0]
        assert_golden("cancel", h.gh.actions)


async def test_pick_then_merge_cleans_up(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path) as h:
        await _label(h)
        await h.until_idle()
        await _comment(h, "/forge pick 3")
        await h.until_idle()
        pull = h.gh.pull(REPO, 2)
        assert pull.head == "forge/1-gemini"
        assert "Opened #2 with attempt 3 (gemini)." in h.comments()[-1]
        # The reviewer merges it on GitHub.
        closed = payloads.pull_closed(h.repo_payload, 2, "forge/1-gemini", merged=True)
        assert await h.deliver("pull_request", closed) == 202
        await h.until_idle()
        assert h.remote_branches() == ["main"]  # losers and the merged head: all forge/ branches it made
        worktrees = [a.worktree for a in await h.daemon.engine.attempts(1)]
        assert not any(Path(w).exists() for w in worktrees)
        assert "PR #2 merged: removed 3 worktrees and deleted 3 branches." in h.comments()[0]
        assert_golden("pick_merge_cleanup", h.gh.actions)


async def test_closed_unmerged_keeps_the_pr_branch_and_never_touches_others(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path, bot={"auto_pr": True}) as h:
        await _label(h)
        await h.until_idle()
        closed = payloads.pull_closed(h.repo_payload, 2, "forge/1-claude", merged=False)
        assert await h.deliver("pull_request", closed) == 202
        await h.until_idle()
        assert h.remote_branches() == ["forge/1-claude", "main"]
        # A PR forgebot did not open is none of its business.
        stranger = payloads.pull_closed(h.repo_payload, 99, "feature/x", merged=True)
        assert await h.deliver("pull_request", stranger) == 200  # acknowledged, not recorded: not a forge/ branch
        await h.until_idle()
        assert h.remote_branches() == ["forge/1-claude", "main"]


async def test_a_non_collaborators_command_is_refused_politely(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path) as h:
        await _comment(h, "/forge run", sender="mallory")  # read access only
        await _comment(h, "/forge run", sender="stranger")  # not a collaborator at all
        await h.until_idle()
        assert await asyncio.to_thread(h.daemon.store.list_tasks) == []
        assert_golden("refused", h.gh.actions)


async def test_bots_never_trigger_work(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path) as h:
        await _comment(h, "/forge run", sender="forgebot[bot]")
        await _comment(h, "/forge run", sender="dependabot[bot]")
        assert await h.deliver("issues", payloads.labeled(h.repo_payload, 1, "forge", "renovate[bot]")) == 202
        await h.until_idle()
        assert h.gh.actions == []
        assert await asyncio.to_thread(h.daemon.store.list_tasks) == []


async def test_a_bad_signature_is_refused_and_does_nothing(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path) as h:
        payload = payloads.labeled(h.repo_payload, 1, "forge", "alice")
        assert await h.deliver("issues", payload, secret="not the secret") == 401
        await h.until_idle()
        assert h.gh.actions == [] and h.gh.requests == []


async def test_a_redelivered_delivery_is_a_no_op(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path) as h:
        payload = payloads.labeled(h.repo_payload, 1, "forge", "alice")
        assert await h.deliver("issues", payload, delivery="same-guid") == 202
        await h.until_idle()
        assert await h.deliver("issues", payload, delivery="same-guid") == 200
        await h.until_idle()
        assert len(await asyncio.to_thread(h.daemon.store.list_tasks)) == 1
        assert len(h.comments()) == 1


async def test_help_and_typos(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path) as h:
        await _comment(h, "/forge frok gemini\n/forge help")
        await h.until_idle()
        typo, help_text = h.comments()
        assert "did you mean" in typo.lower() and "/forge fork" in typo
        assert "/forge pick" in help_text and "/forge followup" in help_text


async def test_github_failing_mid_task_with_502_and_rate_limits(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path, bot={"auto_pr": True}) as h:
        comment_edits = r"/repos/acme/widgets/issues/comments/\d+$"
        h.gh.fail("PATCH", comment_edits, 502, times=2)  # idempotent edit: retried
        h.gh.rate_limit("POST", r"/repos/acme/widgets/pulls$", reset_in=1)  # waits until the reset, then opens
        h.gh.fail("GET", r"/repos/acme/widgets/collaborators/.*/permission$", 502, times=1)  # a read: retried
        # The comment POST lands but answers 502: it must not be posted twice.
        h.gh.fail("POST", r"/repos/acme/widgets/issues/1/comments$", 502, times=1, after=True)
        await _label(h)
        await h.until_idle()
        assert len(h.comments()) == 1, h.comments()
        assert len(_pulls(h)) == 1
        assert "Comparison" in h.comments()[0] and "Pull request: #2" in h.comments()[0]
        assert h.daemon.github.stats.rate_limit_waits >= 1  # type: ignore[attr-defined]


async def test_cleanup_keeps_only_the_winners_branch(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path) as h:
        await _label(h)
        await _until_running(h)
        await _comment(h, "/forge cleanup")
        await h.until_idle()
        assert "attempts are still running" in h.comments()[-1]
        await h.until_idle()
        assert len(h.remote_branches()) == 4  # main and the three attempt branches
        await _comment(h, "/forge cleanup")
        await h.until_idle()
        ranked = (await h.daemon.engine.compare(1)).winner
        assert ranked is not None
        winner = await h.daemon.engine.attempt(ranked.attempt_id)
        assert h.remote_branches() == sorted([winner.branch, "main"])
        assert not any(Path(a.worktree).exists() for a in await h.daemon.engine.attempts(1))
        assert f"removed 3 worktrees and deleted 2 branches; kept `{winner.branch}`" in h.comments()[0]
