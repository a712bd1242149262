"""Nothing twice: commands and replies after a failed or repeated delivery, the steps of opening a pull request
after GitHub failed in the middle, and forgebot's own comments under a personal token."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.bot_harness import REPO, BotHarness
from tests.bot_steps import comment, delivery_status, label, pulls, redeliver, replies


async def test_a_redelivery_runs_only_the_commands_that_did_not_finish(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path) as h:
        await label(h)
        await h.until_idle()
        h.gh.fail("POST", r"/repos/acme/widgets/pulls$", 502)  # the third command fails
        body = "/forge fork gemini\n/forge compare\n/forge pick claude"
        made = await comment(h, body, delivery="guid-7")
        await h.until_idle()
        assert await delivery_status(h, "guid-7") == "failed" and pulls(h) == []
        assert await redeliver(h, made, "guid-7") == 202  # a failed delivery is handled again
        await h.until_idle()
        assert await delivery_status(h, "guid-7") == "done"
        assert [a.agent for a in await h.daemon.engine.attempts(1)] == ["claude", "codex", "gemini", "gemini"]
        assert len(replies(h, f"c{made}-1")) == 1  # the comparison, not posted again
        assert replies(h, f"c{made}-2") == [
            "Opened #2 with attempt 1 (claude).\n\n<!-- forgebot:reply=c" + f"{made}-2 -->"
        ]
        assert pulls(h) == [2]


async def test_commands_a_crash_left_unfinished(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path) as h:
        await label(h)
        await h.until_idle()
        body = "/forge fork gemini\n/forge compare"
        made = h.gh.add_comment(REPO, 1, body)
        store = h.daemon.store.bot_store()
        for line in (0, 1):  # a daemon was killed while doing both: their records say "started"
            await asyncio.to_thread(store.begin_command, f"c{made.id}-{line}", verb="x", repo=REPO, now=1.0)
        assert await redeliver(h, made.id, "guid-10") == 202
        await h.until_idle()
        assert len(await h.daemon.engine.attempts(1)) == 3  # a fork may have happened: not repeated blindly
        [fork] = replies(h, f"c{made.id}-0")
        assert "I was stopped while doing `/forge fork`" in fork
        [compare] = replies(h, f"c{made.id}-1")  # harmless to repeat: done again
        assert "I was stopped" not in compare and "claude" in compare


async def test_a_fork_that_failed_midway_is_not_run_again_on_redelivery(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path) as h:
        await label(h)
        await h.until_idle()
        # The fork is made, then its progress refresh fails beyond the client's retries: the delivery fails.
        fault = h.gh.fail("PATCH", r"/repos/acme/widgets/issues/comments/\d+$", 502, times=None)
        made = await comment(h, "/forge fork gemini", delivery="guid-11")
        await h.until_idle()
        assert await delivery_status(h, "guid-11") == "failed"
        h.gh.faults.remove(fault)
        assert await redeliver(h, made, "guid-11") == 202
        await h.until_idle()
        assert [a.agent for a in await h.daemon.engine.attempts(1)] == ["claude", "codex", "gemini", "gemini"]
        [told] = replies(h, f"c{made}-0")  # not forked a second time: the user is told instead
        assert "I was stopped while doing `/forge fork`" in told
        assert await delivery_status(h, "guid-11") == "done"


async def test_a_reply_that_landed_before_a_502_is_not_posted_again(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path) as h:
        h.gh.fail("POST", r"/repos/acme/widgets/issues/1/comments$", 502, after=True)
        made = await comment(h, "/forge help", delivery="guid-8")
        await h.until_idle()
        assert await delivery_status(h, "guid-8") == "failed"  # the reply raised: the delivery failed
        assert await redeliver(h, made, "guid-8") == 202
        await h.until_idle()
        assert len(replies(h, f"c{made}-0")) == 1 and len(h.comments()) == 1
        assert await delivery_status(h, "guid-8") == "done"


async def test_a_pr_created_despite_a_502_is_found_and_completed(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path, bot={"auto_pr": True}) as h:
        h.gh.fail("POST", r"/repos/acme/widgets/pulls$", 502, after=True)  # it lands, then answers 502
        await label(h)
        await h.until_idle()
        assert pulls(h) == [2]
        issue = h.gh.repos[REPO].issues[2]
        assert issue.labels == ["forge"] and h.gh.pull(REPO, 2).requested_reviewers == ["alice"]
        assert "Pull request: #2 (open)" in h.comments()[0]


async def test_a_failed_label_is_added_when_the_command_runs_again(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path) as h:
        await label(h)
        await h.until_idle()
        h.gh.fail("POST", r"/repos/acme/widgets/issues/2/labels$", 502, times=4)  # beyond the client's retries
        made = await comment(h, "/forge pick claude", delivery="guid-9")
        await h.until_idle()
        link = await asyncio.to_thread(h.daemon.store.bot_store().get_link, 1)
        assert (link.pr_number, h.gh.repos[REPO].issues[2].labels) == (2, [])  # the number is saved anyway
        assert await delivery_status(h, "guid-9") == "failed"
        assert await redeliver(h, made, "guid-9") == 202
        await h.until_idle()
        assert pulls(h) == [2] and h.gh.repos[REPO].issues[2].labels == ["forge"]
        assert h.gh.pull(REPO, 2).requested_reviewers == ["alice"]
        assert len(replies(h, f"c{made}-0")) == 1
        assert len(h.gh.requests_to("POST", r"/pulls$")) == 1  # found by its branch, never created twice


async def test_forgebots_own_comments_are_ignored_with_a_personal_token(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path) as h:
        # The token's user is a plain User account called "forgebot", with write access: only its login tells.
        h.gh.set_permission(REPO, "forgebot", "write")
        await comment(h, "/forge run", sender="forgebot")
        await comment(h, "Quoting my help:\n/forge status", sender="forgebot")
        await h.until_idle()
        assert h.gh.actions == []
        assert await asyncio.to_thread(h.daemon.store.list_tasks) == []
        assert len(h.gh.requests_to("GET", "/user$")) == 1  # asked once


async def test_own_login_unknown_does_not_block_people(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path) as h:
        h.gh.fail("GET", "/user$", 500, times=None)
        await comment(h, "/forge help")
        await h.until_idle()
        assert len(h.comments()) == 1  # GitHub could not say who we are: people still get answers
