"""Where a task lives on GitHub, for the task JSON: its issue, its pull request and the web address of its
branches, from the bot's issue ↔ task links (forgebot/store/bot.py). Tasks from the CLI or the API have none."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from forgebot.api.context import ApiContext
from forgebot.core.models import Task
from forgebot.store.bot import IssueTask

Json = dict[str, Any]


def github_json(link: IssueTask, web_url: str) -> Json:
    """Pure. `tree_url` + a branch name is the branch's page."""
    repo = f"{web_url.rstrip('/')}/{quote(link.repo, safe='/')}"
    return {
        "repo": link.repo,
        "issue": link.issue,
        "issue_url": f"{repo}/issues/{link.issue}",
        "pr": link.pr_number,
        "pr_url": f"{repo}/pull/{link.pr_number}" if link.pr_number is not None else None,
        "pr_state": link.pr_state,
        "tree_url": f"{repo}/tree/",
        "requester": link.requester,
    }


async def github_of(ctx: ApiContext, tasks: Sequence[Task]) -> dict[int, Json]:
    """The `github` object of each of `tasks` that came from an issue, by task id."""
    if ctx.bot_store is None or not tasks:
        return {}
    links = await asyncio.to_thread(ctx.bot_store.links_for_tasks, [task.id for task in tasks])
    return {task_id: github_json(link, ctx.web_url) for task_id, link in links.items()}


async def github_one(ctx: ApiContext, task: Task) -> Json | None:
    return (await github_of(ctx, [task])).get(task.id)
