"""`/forge followup -- <text>` as a comment on forgebot's pull request: the winning attempt's agent continues in its
session, and the new commit is pushed to the pull request's branch, never over someone else's commits."""

from __future__ import annotations

from pathlib import Path

from tests.bot_harness import BotHarness, fake_agent
from tests.bot_steps import comment, label, replies
from tests.support import git

AGENTS = {"claude": fake_agent("append", "notes.txt", "one more line", "usage", "100", "20")}


async def _pull_open(h: BotHarness) -> None:
    await label(h, "claude")
    await h.until_idle()
    await comment(h, "/forge pick claude")
    await h.until_idle()


def _log(remote: Path, branch: str) -> list[str]:
    return git(remote, "log", "--format=%s", branch).splitlines()


async def test_followup_on_the_pr_pushes_a_new_commit_to_its_branch(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path, agents=AGENTS) as h:
        await _pull_open(h)
        before = git(h.remote, "rev-parse", "forge/1-claude")
        await comment(h, "/forge followup -- add another line, please", pull=2)
        await h.until_idle()
        after = git(h.remote, "rev-parse", "forge/1-claude")
        assert after != before and git(h.remote, "rev-parse", f"{after}~1") == before  # fast-forward
        assert _log(h.remote, "forge/1-claude")[0] == "forge: follow-up: add another line, please"
        assert git(h.remote, "show", "forge/1-claude:notes.txt") == "one more line\none more line"
        assert f"Pushed the follow-up of attempt 1 (claude) to PR #2: now at `{after[:7]}`." in h.comments()[0]
        assert h.comments(2) == []  # nothing to say on the PR itself


async def test_a_push_refused_because_someone_else_pushed_is_told_on_the_pr(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path, agents=AGENTS) as h:
        await _pull_open(h)
        # A reviewer pushes a fix to the PR branch.
        other = tmp_path / "reviewer"
        git(tmp_path, "clone", "-q", "--branch", "forge/1-claude", str(h.remote), str(other))
        (other / "fix.txt").write_text("reviewer's fix\n")
        git(other, "add", "fix.txt")
        git(other, "commit", "-q", "-m", "reviewer's fix")
        git(other, "push", "-q", "origin", "forge/1-claude")
        followup = await comment(h, "/forge followup -- add another line", pull=2)
        await h.until_idle()
        assert _log(h.remote, "forge/1-claude")[0] == "reviewer's fix"  # not overwritten
        [told] = [body for body in h.comments(2) if "could not push the follow-up" in body]
        assert "attempt 1 (claude)" in told and "did someone else push to it?" in told
        assert "Pushed the follow-up" not in h.comments()[0]
        assert replies(h, f"c{followup}-0", 2) == []  # the command itself went fine: no error reply
