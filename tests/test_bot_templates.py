"""`/forge template NAME key=value ...` end to end: a signed issue_comment delivery in, a task with the rendered
prompt out (the agent program keeps the prompt it was given), or a reply saying what is wrong."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests import payloads
from tests.bot_harness import REPO, BotHarness, assert_golden, fake_agent
from tests.bot_steps import visible
from tests.support import PYTHON

COPY_PROMPT = "import shutil, sys; shutil.copy(sys.argv[1], 'prompt.txt')"
FIX_BUG = """\
---
description: Fix a bug in one file
title: "Fix {{ file }}"
agents: [claude]
params:
  file: {description: the file to fix}
  line: {default: "1"}
---
Fix the bug in `{{ file }}` near line {{ line }}. Add a test that fails without the fix.
"""
CONFIG_TEMPLATES = {
    "review": {"params": ["module"], "prompt": "Review {{ module }}.", "agents": ["gemini"]},
    "fix-bug": {"prompt": "The server's fix-bug: the repository's file wins over it."},
}


def agents() -> dict[str, object]:
    copier = {"executor": "command", "command": [PYTHON, "-c", COPY_PROMPT, "{prompt_file}"]}
    return {"claude": copier, "codex": fake_agent("write", "x.py", "x = 1"), "gemini": copier}


async def _comment(h: BotHarness, body: str, *, pull: bool = False) -> None:
    number = 2 if pull else 1
    comment = h.gh.add_comment(REPO, number, body, user="alice")
    payload = payloads.commented(h.repo_payload, number, body, "alice", comment_id=comment.id, pull=pull)
    assert await h.deliver("issue_comment", payload) == 202


async def _prompt(h: BotHarness, task_id: int = 1) -> str:
    (attempt,) = await h.daemon.engine.attempts(task_id)
    return (Path(attempt.worktree) / "prompt.txt").read_text()


async def test_template_starts_a_task_with_the_rendered_prompt(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path, agents=agents(), templates=CONFIG_TEMPLATES) as h:
        h.gh.set_file(REPO, ".github/forge/templates/fix-bug.md", FIX_BUG)
        await _comment(h, "Please:\n/forge template fix-bug file=slug.py")
        await h.until_idle()

        [attempt] = await h.daemon.engine.attempts(1)
        assert attempt.agent == "claude"  # the template's agents, not the three configured ones
        task = await h.daemon.engine.task(1)
        assert (task.title, task.external_ref) == ("Add a slugify helper", f"{REPO}#1")  # the title
        assert (await _prompt(h)).startswith(
            "# Task: Add a slugify helper\n\n"
            "Fix the bug in `slug.py` near line 1. Add a test that fails without the fix.\n\n"
            "## Issue #1\n\nPlease add slugify().\n\n"
            "Work in the current directory"
        )
        [progress] = h.comments()
        assert "claude" in progress and "gemini" not in progress
        assert_golden("template", h.gh.actions)


async def test_a_config_template_when_the_repository_has_no_file(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path, agents=agents(), templates=CONFIG_TEMPLATES) as h:
        await _comment(h, "/forge template review module=store")
        await h.until_idle()
        [attempt] = await h.daemon.engine.attempts(1)
        assert attempt.agent == "gemini"
        assert "Review store.\n\n## Issue #1\n\nPlease add slugify()." in await _prompt(h)


async def test_template_errors_are_replies_and_start_nothing(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path, agents=agents(), templates=CONFIG_TEMPLATES) as h:
        h.gh.set_file(REPO, ".github/forge/templates/fix-bug.md", FIX_BUG)
        h.gh.set_file(REPO, ".github/forge/templates/broken.md", "---\nparams: [x]\n---\nUse {{ y }}.\n")
        h.gh.set_file(REPO, ".github/forge/templates/later.md", "Not on the default branch.", ref="feature")
        await _comment(
            h,
            "/forge template nope\n"
            "/forge template fix-bug\n"
            "/forge template fix-bug file=a.py colour=red\n"
            "/forge template broken x=1\n"
            "/forge template later\n"
            "/forge template fix-bug file\n"
            "/forge tempalte fix-bug",
        )
        await h.until_idle()
        assert await asyncio.to_thread(h.daemon.store.list_tasks) == []
        replies = [visible(body) for body in h.comments()]
        assert replies[:5] == [
            "⚠️ unknown template `nope` (available: broken, fix-bug, review)",
            "⚠️ template `fix-bug`: missing parameter file (usage: fix-bug file=<file> [line=1])",
            "⚠️ template `fix-bug`: unknown parameter colour (usage: fix-bug file=<file> [line=1])",
            "⚠️ .github/forge/templates/broken.md body: {{ y }} is not a declared parameter "
            "(declared: x; write \\{{ for a literal {{)",
            "⚠️ unknown template `later` (available: broken, fix-bug, review)",  # the default branch only
        ]
        assert replies[5].startswith("⚠️ `/forge template`: `file` is not key=value.")  # the grammar's reply
        assert "Did you mean `/forge template`?" in replies[6]
        assert_golden("template_errors", h.gh.actions)


async def test_template_without_any_defined_says_how_to_add_one(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path, agents=agents()) as h:
        await _comment(h, "/forge template fix-bug file=a.py")
        await h.until_idle()
        assert [visible(body) for body in h.comments()] == [
            "⚠️ unknown template `fix-bug` (none is defined: add `.github/forge/templates/fix-bug.md` on `main` "
            "or a `templates:` entry to the config)"
        ]


async def test_template_on_a_pull_request_is_refused(tmp_path: Path) -> None:
    async with BotHarness.start(tmp_path, agents=agents(), templates=CONFIG_TEMPLATES) as h:
        h.gh.add_pull(REPO, "feature", base="main")
        await _comment(h, "/forge template review module=x", pull=True)
        await h.until_idle()
        [reply] = [c.body for c in h.gh.repos[REPO].comment_list(2) if c.user != "alice"]
        assert reply.startswith("⚠️ `/forge template` works on issues")
        assert await asyncio.to_thread(h.daemon.store.list_tasks) == []
