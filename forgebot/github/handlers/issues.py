"""`issues.labeled`: the trigger label (`forge`, or `forge:claude,gemini`) starts a task on the issue.
Removing the label does nothing to running work."""

from __future__ import annotations

import re

import structlog

from forgebot.core import render
from forgebot.core.commands import LabelError, parse_label
from forgebot.github.bot import Bot, Issue, Refused
from forgebot.github.routing import Router, WebhookEvent

log = structlog.get_logger(__name__)


def register(router: Router, bot: Bot) -> None:
    async def labeled(event: WebhookEvent) -> None:
        await on_labeled(bot, event)

    def ours(event: WebhookEvent) -> bool:
        try:
            return parse_label(_label(event), bot.behaviour.bot.trigger_label) is not None
        except LabelError:
            return True  # a malformed trigger label gets a reply

    router.add("issues", "labeled", labeled, relevant=ours)


def _label(event: WebhookEvent) -> str:
    return str((event.payload.get("label") or {}).get("name", ""))


async def on_labeled(bot: Bot, event: WebhookEvent) -> None:
    label = _label(event)
    problem: str | None = None
    try:
        agents = parse_label(label, bot.behaviour.bot.trigger_label)
    except LabelError as error:
        agents, problem = None, str(error)
    if agents is None and problem is None:
        return  # some other label
    if why := await bot.ignored(event):
        log.info("event_ignored", reason=why, repo=event.repo, delivery=event.delivery)
        return
    issue = Issue.from_event(event)
    sender = str(event.payload["sender"]["login"])
    key = "d" + re.sub(r"[^A-Za-z0-9:._-]", "_", event.delivery)[:80]  # replies are found again by it
    if refusal := await bot.authorize(issue.repo, sender):
        if bot.behaviour.bot.reply_to_unauthorized:
            await bot.reply(issue, render.refusal(sender, refusal), key=f"{key}-refused")
        return
    if problem is not None:
        await bot.reply(issue, render.error_reply(problem), key=key)
        return
    await bot.github.react_to_issue(issue.repo, issue.number, "eyes")
    try:
        await bot.start_task(issue, agents or [], requester=sender, delivery=event.delivery)
    except Refused as error:
        await bot.reply(issue, render.error_reply(str(error)), key=key)
