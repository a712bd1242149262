"""`/forge merge` end to end: signed deliveries in, a pull request opened ready (or a draft marked ready) and merged
on the fake GitHub, which refuses drafts and disallowed merge methods as GitHub does."""

from __future__ import annotations

from pathlib import Path

import pytest

from forgebot.github.merging import checks_refusal, merge_method
from forgebot.github.port import CheckInfo, RepoInfo
from tests import payloads
from tests.bot_harness import REPO, BotHarness, assert_golden
from tests.bot_steps import comment, label, pulls, replies


async def test_merge_opens_a_ready_pr_then_merges_it_once_its_checks_pass_and_cleans_up(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path) as h:
        h.gh.repos[REPO].allow_squash_merge = False  # a repository that wants merge commits
        await label(h)
        await h.until_idle()
        first = await comment(h, "/forge merge claude")
        await h.until_idle()
        [opened] = replies(h, f"c{first}-0")  # its CI has not even started: not merged at once
        assert "opened #2; checks have not reported yet. Run `/forge merge` again once they pass" in opened
        assert (h.gh.pull(REPO, 2).draft, h.gh.pull(REPO, 2).merged) == (False, False)
        h.gh.add_check(REPO, "forge/1-claude", "build")
        await comment(h, "/forge merge claude")
        await h.until_idle()
        pull = h.gh.pull(REPO, 2)
        assert (pull.head, pull.draft, pull.merged, pull.merge_method) == ("forge/1-claude", False, True, "merge")
        assert "(draft)" not in next(a for a in h.gh.actions if "open PR" in a)
        # GitHub then sends pull_request.closed (merged by forgebot itself): forgebot still cleans up.
        closed = payloads.pull_closed(h.repo_payload, 2, "forge/1-claude", merged=True, sender="forgebot")
        assert await h.deliver("pull_request", closed) == 202
        await h.until_idle()
        assert h.remote_branches() == ["main"]
        assert "PR #2 merged: removed 3 worktrees and deleted 3 branches." in h.comments()[0]
        publisher = h.daemon.bot.publisher  # a cleaned-up task's comment body and edit count are not kept
        assert all(1 not in held for held in (publisher._last_body, publisher._edits, publisher._last_edit))
        assert_golden("merge_ready", h.gh.actions)


async def test_merge_marks_an_existing_draft_ready_first(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path, bot={"auto_pr": True}) as h:
        await label(h)
        await h.until_idle()
        assert h.gh.pull(REPO, 2).draft  # auto_pr opens a draft
        h.gh.add_check(REPO, "forge/1-claude", "build")
        await comment(h, "/forge merge 1")
        await h.until_idle()
        assert h.gh.pull(REPO, 2).merged and pulls(h) == [2]
        actions = h.gh.actions
        assert actions.index(f"{REPO}#2: ready for review") < actions.index(f"{REPO}#2: merge PR (squash)")
        assert len(h.gh.requests_to("POST", "/graphql$")) == 1


async def test_an_existing_pr_without_checks_is_merged_only_when_configured(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path, bot={"auto_pr": True}) as h:
        await label(h)
        await h.until_idle()
        refused = await comment(h, "/forge merge 1")
        await h.until_idle()
        [reply] = replies(h, f"c{refused}-0")
        assert "no checks reported yet on #2. Try again when they pass" in reply
        assert not h.gh.pull(REPO, 2).merged
    async with BotHarness.start(tmp_path / "ci-less", bot={"auto_pr": True, "merge_without_checks": True}) as h:
        await label(h)
        await h.until_idle()
        await comment(h, "/forge merge 1")
        await h.until_idle()
        assert h.gh.pull(REPO, 2).merged


async def test_merge_waits_for_running_checks_and_refuses_failed_ones(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path) as h:
        await label(h)
        await h.until_idle()
        await comment(h, "/forge pick claude")
        await h.until_idle()
        build = h.gh.add_check(REPO, "forge/1-claude", "build", None, status="in_progress")
        h.gh.set_status(REPO, "forge/1-claude", "ci/lint", "success")
        first = await comment(h, "/forge merge claude")
        await h.until_idle()
        build.status, build.conclusion = "completed", "failure"
        second = await comment(h, "/forge merge claude")
        await h.until_idle()
        [running] = replies(h, f"c{first}-0")
        [failed] = replies(h, f"c{second}-0")
        assert "checks still running on #2: `build`. Try again when they pass" in running
        assert "checks failed on #2: `build`. Fix them" in failed
        pull = h.gh.pull(REPO, 2)
        assert (pull.draft, pull.merged) == (False, False)  # marked ready, not merged
        build.conclusion = "success"
        await comment(h, "/forge merge claude")
        await h.until_idle()
        assert h.gh.pull(REPO, 2).merged and pulls(h) == [2]


async def test_merge_is_refused_below_merge_permissions(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path, bot={"merge_permissions": ["maintain", "admin"]}) as h:
        h.gh.set_permission(REPO, "bob", "maintain")
        await label(h)
        await h.until_idle()
        refused = await comment(h, "/forge merge claude")  # alice has write: she may run and pick, not merge
        await h.until_idle()
        [reply] = replies(h, f"c{refused}-0")
        assert "this needs maintain or admin permission on this repository" in reply
        assert pulls(h) == []
        await comment(h, "/forge pick claude")
        await h.until_idle()
        h.gh.add_check(REPO, "forge/1-claude", "build")
        await comment(h, "/forge merge claude", sender="bob")
        await h.until_idle()
        assert h.gh.pull(REPO, 2).merged


async def test_a_merge_github_refuses_is_told_with_githubs_reason(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path) as h:
        await label(h)
        await h.until_idle()
        await comment(h, "/forge pick claude")
        await h.until_idle()
        h.gh.add_check(REPO, "forge/1-claude", "build")
        h.gh.fail("PUT", r"/pulls/\d+/merge$", 405, body={"message": 'Required status check "ci" is expected.'})
        merge = await comment(h, "/forge merge claude")
        await h.until_idle()
        [reply] = replies(h, f"c{merge}-0")
        assert "GitHub would not merge #2: GitHub merge_pull: HTTP 405 Required status check" in reply
        assert not h.gh.pull(REPO, 2).merged


@pytest.mark.parametrize(
    ("squash", "commit", "rebase", "expected"),
    [
        (True, True, True, "squash"),
        (False, True, True, "merge"),
        (False, False, True, "rebase"),
        (True, False, False, "squash"),
        (False, False, False, None),
    ],
)
def test_merge_method(squash: bool, commit: bool, rebase: bool, expected: str | None) -> None:
    assert merge_method(RepoInfo("o/r", "main", "", False, squash, commit, rebase)) == expected


def test_checks_refusal() -> None:
    ok, bad, running = CheckInfo("a", "success"), CheckInfo("b`x", "failure"), CheckInfo("c", "pending")
    assert checks_refusal([ok], 2) is None
    assert checks_refusal([], 2) == "no checks reported yet on #2. Try again when they pass"
    assert checks_refusal([], 2, without_checks=True) is None
    assert checks_refusal([ok, running, bad], 2) == "checks failed on #2: `b'x`. Fix them, then `/forge merge` again"
    assert checks_refusal([running], 2) == "checks still running on #2: `c`. Try again when they pass"
    many = [CheckInfo(f"t{i}", "failure") for i in range(12)]
    assert (checks_refusal(many, 2) or "").endswith("`t9` and 2 more. Fix them, then `/forge merge` again")
