"""Retries, rate limits and pacing for `PyGithubClient` (forgebot/github/client.py), which builds on `Transport`.

Retry rule ("never blindly repeat a POST that may have landed"):
- reads are retried on 5xx and connection errors, with exponential backoff, a bounded number of times;
- a rate-limited request (403/429 with `retry-after`, or `x-ratelimit-remaining: 0` + `x-ratelimit-reset`, or a
  secondary-limit message) was not processed: any request waits as GitHub says (up to a cap) and is repeated;
- idempotent writes (edit a comment or PR, react, add labels, request reviewers, merge, delete a ref) are retried
  like reads; writes that create something (a comment, a pull request) are never repeated after a 5xx or a
  connection error: they raise, and the caller looks for its marker or branch before writing again.

Writes are paced with asyncio, `write_interval` apart per `Session` (one token or installation), and the calls of
one session run one at a time: PyGithub's `Requester` shares a connection object that is not thread-safe.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import structlog
from github import GithubException
from github.Requester import Requester

from forgebot.github.port import GitHubError, NotFoundOnGitHub

log = structlog.get_logger(__name__)
T = TypeVar("T")


class Kind(enum.Enum):
    READ = "read"
    WRITE = "write"  # idempotent: repeating it after a 5xx does no harm
    CREATE = "create"  # creates something: never repeated after a 5xx


@dataclass
class ClientStats:
    reads: int = 0  # attempts: a retried read counts twice
    writes: int = 0
    retries: int = 0  # repeats after a 5xx or a connection error
    rate_limit_waits: int = 0


class CallObserver(Protocol):
    """Told of every request sent and every rate-limit wait (the daemon's metrics); cheap, never raises."""

    def request(self, op: str, kind: str) -> None: ...

    def rate_limited(self, op: str, wait: float) -> None: ...


@dataclass
class Session:
    """The calls of one token or installation: one at a time, writes paced, all held while rate limited."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    write_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    next_write: float = 0.0  # time.monotonic()
    blocked_until: float = 0.0


class Transport:
    """The retry loop, pacing and rate-limit waits of one client; `PyGithubClient` runs every request through
    `_call`."""

    def __init__(
        self,
        *,
        write_interval: float,
        max_attempts: int,
        backoff: float,
        max_rate_limit_wait: float,
        secondary_rate_wait: float,
        observer: CallObserver | None,
    ) -> None:
        self.stats = ClientStats()
        self.observer = observer  # the composition root may set it after construction
        self._write_interval = write_interval
        self._max_attempts = max(1, max_attempts)
        self._backoff = backoff
        self._max_rate_limit_wait = max_rate_limit_wait
        self._secondary_rate_wait = secondary_rate_wait

    async def _call(self, session: Session, op: str, kind: Kind, fn: Callable[[], T], repo: str = "") -> T:
        status: int | None
        for attempt in range(1, self._max_attempts + 1):
            last = attempt == self._max_attempts
            await _sleep_until(session.blocked_until)
            try:
                return await self._attempt(session, op, kind, fn)
            except GithubException as exc:
                wait = self._rate_limit_wait(exc)
                if wait is not None and wait <= self._max_rate_limit_wait and not last:
                    self.stats.rate_limit_waits += 1
                    if self.observer is not None:
                        self.observer.rate_limited(op, wait)
                    session.blocked_until = max(session.blocked_until, time.monotonic() + wait)
                    log.warning("github_rate_limited", op=op, repo=repo, status=exc.status, wait=round(wait, 3))
                    continue
                if last or exc.status < 500 or kind is Kind.CREATE:
                    raise _error(op, exc) from exc
                status = exc.status
            except OSError as exc:  # connection errors and timeouts (requests' exceptions are OSErrors)
                if last or kind is Kind.CREATE:
                    raise GitHubError(f"GitHub {op}: {type(exc).__name__}") from exc
                status = None
            delay = self._backoff * 2 ** (attempt - 1)
            self.stats.retries += 1
            log.warning("github_retry", op=op, repo=repo, status=status, attempt=attempt, delay=delay)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _attempt(self, session: Session, op: str, kind: Kind, fn: Callable[[], T]) -> T:
        if kind is Kind.READ:
            self.stats.reads += 1
            self._observe(op, kind)
            return await _in_thread(session.lock, fn)
        async with session.write_lock:
            await _sleep_until(session.next_write)
            self.stats.writes += 1
            self._observe(op, kind)
            try:
                return await _in_thread(session.lock, fn)
            finally:
                session.next_write = time.monotonic() + self._write_interval

    def _observe(self, op: str, kind: Kind) -> None:
        if self.observer is not None:
            self.observer.request(op, kind.value)

    def _rate_limit_wait(self, exc: GithubException) -> float | None:
        """Seconds GitHub asks us to wait before repeating the request; None when it is not a rate limit."""
        if exc.status not in (403, 429):
            return None
        headers = exc.headers or {}
        if "retry-after" in headers:
            return _seconds(headers["retry-after"], self._secondary_rate_wait)
        if headers.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in headers:
            # The reset is a whole epoch second and clocks differ: one more second so the retry is not early.
            return max(0.0, _seconds(headers["x-ratelimit-reset"], time.time()) - time.time()) + 1.0
        message = exc.data.get("message") if isinstance(exc.data, dict) else None
        if exc.status == 429 or Requester.isRateLimitError(str(message or "")):
            return self._secondary_rate_wait  # a secondary limit without headers: GitHub says wait a minute
        return None


async def _in_thread(lock: asyncio.Lock, fn: Callable[[], T]) -> T:
    async with lock:
        future = asyncio.ensure_future(asyncio.to_thread(fn))
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            await asyncio.wait([future])  # a thread cannot be stopped: keep the connection until it is done
            if not future.cancelled():
                future.exception()
            raise


async def _sleep_until(deadline: float) -> None:
    if (delay := deadline - time.monotonic()) > 0:
        await asyncio.sleep(delay)


def _seconds(value: object, default: float) -> float:
    try:
        return float(str(value))
    except ValueError:
        return default


def _error(op: str, exc: GithubException) -> GitHubError:
    message = exc.data.get("message") if isinstance(exc.data, dict) else None
    text = f"GitHub {op}: HTTP {exc.status}" + (f" {str(message)[:200]}" if message else "")
    return (NotFoundOnGitHub if exc.status == 404 else GitHubError)(text, exc.status)
