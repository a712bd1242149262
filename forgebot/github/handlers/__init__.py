"""One module per behaviour; `register` wires them into a router."""

from __future__ import annotations

from forgebot.github.bot import Bot
from forgebot.github.handlers import comments, issues, pulls
from forgebot.github.routing import Router


def register(router: Router, bot: Bot) -> None:
    issues.register(router, bot)
    comments.register(router, bot)
    pulls.register(router, bot)
