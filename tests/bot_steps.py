"""Small steps the bot's end-to-end tests share: label the issue, comment as someone, read the fake's state."""

from __future__ import annotations

import asyncio
import re

from tests import payloads
from tests.bot_harness import REPO, BotHarness


async def label(h: BotHarness, agents: str = "") -> None:
    name = f"forge:{agents}" if agents else "forge"
    assert await h.deliver("issues", payloads.labeled(h.repo_payload, 1, name, "alice")) == 202


async def comment(
    h: BotHarness, body: str, sender: str = "alice", *, pull: int | None = None, delivery: str | None = None
) -> int:
    """The comment exists on GitHub (as it would), then its webhook arrives; returns the comment id."""
    number = pull or 1
    made = h.gh.add_comment(REPO, number, body, user=sender)
    payload = payloads.commented(h.repo_payload, number, body, sender, comment_id=made.id, pull=pull is not None)
    assert await h.deliver("issue_comment", payload, delivery=delivery) in (200, 202)
    return made.id


async def redeliver(h: BotHarness, comment_id: int, delivery: str, *, pull: int | None = None) -> int:
    """GitHub sends the same delivery again (its "Redeliver" button: same id, same payload)."""
    number = pull or 1
    body = h.gh.repos[REPO].comments[comment_id].body
    sender = h.gh.repos[REPO].comments[comment_id].user
    payload = payloads.commented(h.repo_payload, number, body, sender, comment_id=comment_id, pull=pull is not None)
    return await h.deliver("issue_comment", payload, delivery=delivery)


def pulls(h: BotHarness) -> list[int]:
    return [n for n, issue in h.gh.repos[REPO].issues.items() if issue.pull is not None]


def replies(h: BotHarness, key: str, number: int = 1) -> list[str]:
    """forgebot's replies carrying the marker of this key."""
    return [body for body in h.comments(number) if body.endswith(f"<!-- forgebot:reply={key} -->")]


async def delivery_status(h: BotHarness, delivery: str) -> str:
    return str((await asyncio.to_thread(h.daemon.store.bot_store().get_delivery, delivery)).status)


def visible(body: str) -> str:
    """A reply as people read it: without the hidden marker on its last line."""
    return re.sub(r"\n\n<!-- forgebot:reply=[A-Za-z0-9:._-]+ -->\Z", "", body)
