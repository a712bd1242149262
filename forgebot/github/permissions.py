"""Who may trigger work: write, maintain or admin on the repository, asked of GitHub and cached briefly.
Any error while asking refuses (fail closed). Bots never trigger work unless allow-listed."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog

from forgebot.github.port import GitHubError, GitHubPort
from forgebot.github.settings import WRITE_PERMISSIONS

log = structlog.get_logger(__name__)


def is_bot(sender: Mapping[str, Any] | None, allowed: Sequence[str] = ()) -> bool:
    """GitHub marks App and bot accounts with type "Bot" and a login ending in "[bot]"; either counts."""
    if not sender:
        return True  # no sender: not a person we can authorize
    login = str(sender.get("login", ""))
    if login in allowed:
        return False
    return sender.get("type") == "Bot" or login.endswith("[bot]")


class Permissions:
    def __init__(self, github: GitHubPort, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._github = github
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[float, str]] = {}

    async def level(self, repo: str, user: str) -> str:
        key = (repo.lower(), user.lower())
        cached = self._cache.get(key)
        now = self._clock()
        if cached and now - cached[0] < self._ttl:
            return cached[1]
        level = await self._github.permission(repo, user)
        self._cache[key] = (now, level)
        return level

    async def may_write(self, repo: str, user: str, levels: Sequence[str] = WRITE_PERMISSIONS) -> tuple[bool, str]:
        """(allowed, why not): whether the user's permission is one of `levels`. Never raises: an error asking
        GitHub refuses."""
        try:
            level = await self.level(repo, user)
        except GitHubError as error:
            log.warning("permission_check_failed", repo=repo, user=user, status=error.status)
            return False, "I could not check your permission on this repository just now; please try again later"
        if level in levels:
            return True, ""
        if tuple(levels) == WRITE_PERMISSIONS:
            return False, "only people with write access to this repository can run forgebot"
        return False, f"this needs {' or '.join(levels)} permission on this repository"
