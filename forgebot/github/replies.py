"""Replies to commands, posted at most once: each ends with a hidden marker naming its key (the comment and
line it answers), and the issue's comments are searched for that marker before posting. A reply whose POST
landed but answered 5xx, or a delivery run again after a crash, finds the first one instead of repeating it."""

from __future__ import annotations

from forgebot.core import render
from forgebot.github.port import CommentInfo, GitHubPort


async def post_once(
    github: GitHubPort, repo: str, number: int, text: str, *, key: str, author: str | None = None
) -> CommentInfo:
    """Post `text` as the reply `key` on issue or pull request `number`, unless it is there already (by
    `author`, when known: a quote of our marker in someone else's comment does not count)."""
    for comment in await github.list_comments(repo, number):
        if render.find_reply_key(comment.body) == key and (author is None or comment.author.lower() == author.lower()):
            return comment
    return await github.create_comment(repo, number, f"{text}\n\n{render.reply_marker(key)}")
