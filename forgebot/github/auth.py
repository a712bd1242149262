"""Who forgebot is to GitHub: a token, or a GitHub App with an installation (and a token) per repository.

PyGithub's `Auth.AppInstallationAuth` can refresh installation tokens itself, but it does so inside whichever worker
thread needs one (two threads may both refresh), only 20 s before expiry, and outside our retries and counters. So
`GitHubApp` asks for tokens explicitly, one request per installation at a time, through the client's retrying call,
and PyGithub reads them from a `SwappableToken` whose value is replaced when a token nears its expiry.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Protocol, TypeVar

import structlog
from github import Auth, Github, GithubIntegration

log = structlog.get_logger(__name__)
T = TypeVar("T")
TOKEN_LIFETIME = 3600.0  # GitHub's installation tokens live an hour
MINTED_REMEMBERED = 256  # installation tokens kept for redaction (a day of hourly tokens for 10 installations)
_TOKENS = re.compile(r'(?<="token": ")[^"]+|\b(?:gh[pousr]_|github_pat_)[A-Za-z0-9_]+')


class _RedactTokens(logging.Filter):
    """PyGithub logs whole response bodies at DEBUG, the installation-token answer included: blank tokens out."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _TOKENS.sub("***", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def redact_pygithub_logs() -> None:
    """Install the filter on PyGithub's request logger (once; it is process-wide)."""
    logger = logging.getLogger("github.Requester")
    if not any(isinstance(f, _RedactTokens) for f in logger.filters):
        logger.addFilter(_RedactTokens())


class SwappableToken(Auth.Auth):
    """An `Authorization: token ...` header whose token may be replaced (by a fresh installation token)."""

    def __init__(self, value: str = "") -> None:
        self.value = value

    @property
    def token_type(self) -> str:
        return "token"

    @property
    def token(self) -> str:
        return self.value

    @property
    def _masked_token(self) -> str:
        return "token (removed)"


def pygithub(api_url: str, timeout: int, auth: Auth.Auth) -> Github:
    """PyGithub without its own retries and sleeps (the client retries and paces) and without eager GETs."""
    return Github(
        auth=auth,
        base_url=api_url,
        timeout=timeout,
        retry=None,
        per_page=100,
        seconds_between_requests=0,
        seconds_between_writes=0,
        lazy=True,
    )


class Call(Protocol):
    """The client's retrying call path, for the App's own requests (JWT-authenticated)."""

    def __call__(self, op: str, fn: Callable[[], T], write: bool = False) -> Awaitable[T]: ...


class GitHubApp:
    """The installation of each repository (cached), and installation tokens cached until `refresh_margin` s
    before they expire."""

    def __init__(self, api_url: str, timeout: int, app_id: int, private_key: str, refresh_margin: float) -> None:
        self.integration = GithubIntegration(
            auth=Auth.AppAuth(app_id, private_key),
            base_url=api_url,
            timeout=timeout,
            retry=None,
            seconds_between_requests=0,
            seconds_between_writes=0,
            lazy=True,
        )
        self.refresh_margin = refresh_margin
        self._installations: dict[str, int] = {}  # "owner/name" -> installation id
        self._tokens: dict[int, tuple[str, float]] = {}  # installation id -> (token, expiry in epoch seconds)
        self._locks: dict[int | None, asyncio.Lock] = {}  # None: installation lookups; an id: its token
        self._minted: dict[str, None] = {}  # the latest tokens created, oldest first (for redaction)

    async def installation(self, repo: str, call: Call) -> int:
        async with self._locks.setdefault(None, asyncio.Lock()):
            if repo not in self._installations:
                owner, name = repo.split("/")
                found = await call("installation", lambda: self.integration.get_repo_installation(owner, name))
                self._installations[repo] = found.id
            return self._installations[repo]

    async def token(self, installation: int, call: Call) -> str:
        async with self._locks.setdefault(installation, asyncio.Lock()):  # concurrent callers share one request
            cached = self._tokens.get(installation)
            if cached is not None and time.time() < cached[1] - self.refresh_margin:
                return cached[0]
            # Creating a token twice is harmless, so this POST may be retried after a 5xx.
            grant = await call("installation_token", lambda: self.integration.get_access_token(installation), True)
            self._tokens[installation] = (grant.token, _epoch(grant.expires_at))
            self._remember(grant.token)
            log.info("github_token_created", installation=installation)
            return grant.token

    def _remember(self, token: str) -> None:
        self._minted[token] = None
        while len(self._minted) > MINTED_REMEMBERED:
            del self._minted[next(iter(self._minted))]

    def minted(self) -> tuple[str, ...]:
        """The installation tokens created so far (the latest MINTED_REMEMBERED): never to be shown anywhere."""
        return tuple(self._minted)

    def forget(self, installation: int) -> None:
        """Drop a token GitHub refused (revoked, or the app was reinstalled): the next call fetches a new one."""
        self._tokens.pop(installation, None)


def _epoch(expires_at: datetime | None) -> float:
    if expires_at is None:
        return time.time() + TOKEN_LIFETIME
    return (expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=UTC)).timestamp()
