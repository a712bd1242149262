"""`pull_request.closed`: when forgebot's pull request is merged or closed, remove the task's worktrees and
delete the losing `forge/` branches it created (never any other branch), then post a final line."""

from __future__ import annotations

import asyncio

import structlog

from forgebot.github.bot import Bot
from forgebot.github.routing import Router, WebhookEvent

log = structlog.get_logger(__name__)


def register(router: Router, bot: Bot) -> None:
    async def closed(event: WebhookEvent) -> None:
        await on_closed(bot, event)

    def ours(event: WebhookEvent) -> bool:
        # forgebot opens pull requests only from the forge/ branches of its attempts; any other is not its business.
        head = event.payload.get("pull_request", {}).get("head", {})
        return isinstance(head, dict) and str(head.get("ref", "")).startswith("forge/")

    router.add("pull_request", "closed", closed, relevant=ours)


async def on_closed(bot: Bot, event: WebhookEvent) -> None:
    if event.repo is None or not bot.behaviour.repos.allows(event.repo):
        return
    pull = event.payload["pull_request"]
    link = await asyncio.to_thread(bot.store.link_for_pull, event.repo, int(pull["number"]))
    if link is None:
        return  # not one of ours
    merged = bool(pull.get("merged"))
    log.info("pull_closed", repo=event.repo, pull=pull["number"], task=link.task_id, merged=merged)
    await bot.publisher.pull_closed(link, merged=merged, head=str(pull["head"]["ref"]))
