"""`GitHubPort` on PyGithub: blocking calls in threads, paced writes, retries as GitHub asks, token or App auth.

Retry rule ("never blindly repeat a POST that may have landed"):
- reads are retried on 5xx and connection errors, with exponential backoff, a bounded number of times;
- a rate-limited request (403/429 with `retry-after`, or `x-ratelimit-remaining: 0` + `x-ratelimit-reset`, or a
  secondary-limit message) was not processed: any request waits as GitHub says (up to a cap) and is repeated;
- idempotent writes (edit a comment or PR, react, add labels, request reviewers, merge, delete a ref) are retried
  like reads; writes that create something (a comment, a pull request) are never repeated after a 5xx or a
  connection error: they raise, and the caller looks for its marker or branch before writing again.

PyGithub's own retry and sleeps are off (its default retry re-sends a POST after a 502; its pacing sleeps inside
threads). Writes are paced here with asyncio, `write_interval` apart per token or installation. One PyGithub
`Requester` shares a connection object that is not thread-safe (PyGithub PR #2052), so the calls of one token or
installation run one at a time, as GitHub asks of integrations anyway.
"""

from __future__ import annotations

import asyncio
import enum
import re
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeVar

import structlog
from github import Github, GithubException
from github.IssueComment import IssueComment
from github.PullRequest import PullRequest
from github.Repository import Repository
from github.Requester import Requester

from forgebot.github import pull_calls
from forgebot.github.auth import GitHubApp, SwappableToken, pygithub, redact_pygithub_logs
from forgebot.github.port import (
    CheckInfo,
    CommentInfo,
    GitHubError,
    HookDelivery,
    IssueInfo,
    NotFoundOnGitHub,
    PullInfo,
    RepoInfo,
)
from forgebot.github.settings import DEFAULT_API_URL

log = structlog.get_logger(__name__)
T = TypeVar("T")
_REPO = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
_REACTIONS = frozenset({"+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"})
_ROLES = frozenset({"admin", "maintain", "write", "triage", "read", "none"})
MAX_BODY = 65536


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
class _Session:
    """The calls of one token or installation: one at a time, writes paced, all held while rate limited."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    write_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    next_write: float = 0.0  # time.monotonic()
    blocked_until: float = 0.0


class PyGithubClient:
    def __init__(
        self,
        *,
        api_url: str = DEFAULT_API_URL,
        token: str | None = None,
        app_id: int | None = None,
        private_key: str | None = None,
        write_interval: float = 1.0,
        max_attempts: int = 4,
        backoff: float = 0.5,
        max_rate_limit_wait: float = 900.0,
        secondary_rate_wait: float = 60.0,
        token_refresh_margin: float = 300.0,
        timeout: int = 15,
        observer: CallObserver | None = None,
    ) -> None:
        if (token is None) == (app_id is None or private_key is None):
            raise ValueError("PyGithubClient needs either a token or an app_id with its private_key")
        redact_pygithub_logs()
        self.stats = ClientStats()
        self.observer = observer  # the composition root may set it after construction
        self._write_interval = write_interval
        self._max_attempts = max(1, max_attempts)
        self._backoff = backoff
        self._max_rate_limit_wait = max_rate_limit_wait
        self._secondary_rate_wait = secondary_rate_wait
        self._api_url = api_url.rstrip("/")
        self._timeout = timeout
        self._token = token
        self._app: GitHubApp | None = None
        if app_id is not None and private_key is not None:
            self._app = GitHubApp(self._api_url, timeout, app_id, private_key, token_refresh_margin)
        self._app_session = _Session()
        # installation id (None with a token) -> PyGithub instance, its token, its session
        self._clients: dict[int | None, tuple[Github, SwappableToken, _Session]] = {}

    async def close(self) -> None:
        for github, _, _ in self._clients.values():
            github.close()
        if self._app is not None:
            self._app.integration.close()

    # ---- GitHubPort

    async def get_repo(self, repo: str) -> RepoInfo:
        def work(r: Repository) -> RepoInfo:
            allowed = (r.allow_squash_merge, r.allow_merge_commit, r.allow_rebase_merge)
            squash, commit, rebase = (value is not False for value in allowed)  # absent: GitHub's default, True
            return RepoInfo(r.full_name, r.default_branch, r.clone_url, bool(r.private), squash, commit, rebase)

        return await self._run(repo, "get_repo", Kind.READ, work)

    async def permission(self, repo: str, user: str) -> str:
        def work(r: Repository) -> str:
            _, data = r.requester.requestJsonAndCheck("GET", f"{r.url}/collaborators/{_quote(user)}/permission")
            # `permission` reads maintain as write and triage as read; `role_name` keeps them (or is a custom role).
            role = data.get("role_name")
            return str(role if role in _ROLES else data["permission"])

        try:
            return await self._run(repo, "permission", Kind.READ, work)
        except NotFoundOnGitHub:
            return "none"  # not a collaborator (or no such user); any other failure raises: callers fail closed

    async def get_issue(self, repo: str, number: int) -> IssueInfo:
        def work(r: Repository) -> IssueInfo:
            i = r.get_issue(number)
            labels = tuple(label.name for label in i.labels)
            return IssueInfo(i.number, i.title, i.body or "", i.user.login, labels, i.state, i.pull_request is not None)

        return await self._run(repo, "get_issue", Kind.READ, work)

    async def list_comments(self, repo: str, number: int) -> list[CommentInfo]:
        def work(r: Repository) -> list[CommentInfo]:
            return [_comment(c) for c in r.get_issue(number).get_comments()]

        return await self._run(repo, "list_comments", Kind.READ, work)

    async def create_comment(self, repo: str, number: int, body: str) -> CommentInfo:
        _check_body(body)
        return await self._run(
            repo, "create_comment", Kind.CREATE, lambda r: _comment(r.get_issue(number).create_comment(body))
        )

    async def edit_comment(self, repo: str, comment_id: int, body: str) -> None:
        _check_body(body)
        await self._run(repo, "edit_comment", Kind.WRITE, lambda r: _issue_comment(r, comment_id).edit(body))

    async def react_to_comment(self, repo: str, comment_id: int, content: str) -> None:
        _check_reaction(content)
        await self._run(repo, "react", Kind.WRITE, lambda r: _issue_comment(r, comment_id).create_reaction(content))

    async def react_to_issue(self, repo: str, number: int, content: str) -> None:
        _check_reaction(content)
        await self._run(repo, "react", Kind.WRITE, lambda r: r.get_issue(number).create_reaction(content))

    async def read_file(self, repo: str, path: str, ref: str) -> str | None:
        def work(r: Repository) -> str | None:
            try:
                content = r.get_contents(path, ref=ref)
            except GithubException as exc:
                if exc.status == 404:  # no such file, or no such ref ("No commit found for the ref ...")
                    return None
                raise
            if isinstance(content, list):
                return None  # a directory
            if content.encoding != "base64":
                raise GitHubError(f"GitHub read_file: {path} is too large for the contents API")
            return content.decoded_content.decode("utf-8", errors="replace")

        return await self._run(repo, "read_file", Kind.READ, work)

    async def list_dir(self, repo: str, path: str, ref: str) -> list[str] | None:
        def work(r: Repository) -> list[str] | None:
            try:
                content = r.get_contents(path, ref=ref)
            except GithubException as exc:
                if exc.status == 404:  # no such folder, or no such ref
                    return None
                raise
            if not isinstance(content, list):
                return None  # a file
            return sorted(entry.name for entry in content if entry.type == "file")

        return await self._run(repo, "list_dir", Kind.READ, work)

    async def find_pull(self, repo: str, head_branch: str) -> PullInfo | None:
        def work(r: Repository) -> PullInfo | None:
            pulls = [_pull(p) for p in r.get_pulls(state="all", head=f"{repo.split('/')[0]}:{head_branch}")]
            return next((p for p in pulls if p.state == "open"), pulls[0] if pulls else None)  # newest first

        return await self._run(repo, "find_pull", Kind.READ, work)

    async def get_pull(self, repo: str, number: int) -> PullInfo:
        return await self._run(repo, "get_pull", Kind.READ, lambda r: _pull(r.get_pull(number)))

    async def create_pull(self, repo: str, *, title: str, body: str, head: str, base: str, draft: bool) -> PullInfo:
        _check_body(body)

        def work(r: Repository) -> PullInfo:
            return _pull(r.create_pull(base=base, head=head, title=title, body=body, draft=draft))

        return await self._run(repo, "create_pull", Kind.CREATE, work)

    async def edit_pull_body(self, repo: str, number: int, body: str) -> None:
        _check_body(body)
        await self._run(repo, "edit_pull", Kind.WRITE, lambda r: r.get_pull(number).edit(body=body))

    async def request_review(self, repo: str, number: int, reviewers: list[str]) -> None:
        if reviewers:
            users = list(reviewers)
            await self._run(
                repo, "request_review", Kind.WRITE, lambda r: r.get_pull(number).create_review_request(users)
            )

    async def add_labels(self, repo: str, number: int, labels: list[str]) -> None:
        if labels:
            await self._run(repo, "add_labels", Kind.WRITE, lambda r: r.get_issue(number).add_to_labels(*labels))

    async def merge_pull(self, repo: str, number: int, *, method: str = "squash", sha: str | None = None) -> bool:
        if method not in pull_calls.MERGE_METHODS:
            raise ValueError(f"merge method must be merge, squash or rebase, got {method!r}")
        return await self._run(repo, "merge_pull", Kind.WRITE, lambda r: pull_calls.merge(r, number, method, sha))

    async def mark_ready(self, repo: str, number: int) -> None:
        await self._run(repo, "mark_ready", Kind.WRITE, lambda r: pull_calls.mark_ready(r, number))

    async def commit_checks(self, repo: str, sha: str) -> list[CheckInfo]:
        return await self._run(repo, "commit_checks", Kind.READ, lambda r: pull_calls.checks(r, sha))

    async def own_login(self) -> str:
        if self._app is not None:
            app = await self._app_call("own_login", self._app.integration.get_app)
            return f"{app.slug}[bot]"
        github, _, session = self._client(None, self._token)
        return await self._call(session, "own_login", Kind.READ, lambda: str(github.get_user().login))

    async def delete_branch(self, repo: str, branch: str) -> bool:
        def work(r: Repository) -> bool:
            try:
                r.requester.requestJsonAndCheck("DELETE", f"{r.url}/git/refs/heads/{urllib.parse.quote(branch)}")
            except GithubException as exc:
                if exc.status == 422:  # "Reference does not exist"
                    return False
                raise
            return True

        return await self._run(repo, "delete_branch", Kind.WRITE, work)

    async def git_token(self, repo: str) -> str | None:
        if self._app is None:
            return self._token
        return await self._app.token(await self._app.installation(_check_repo(repo), self._app_call), self._app_call)

    def known_tokens(self) -> tuple[str, ...]:
        minted = self._app.minted() if self._app is not None else ()
        return tuple(t for t in (self._token, *minted) if t)

    async def ping(self) -> None:
        if self._app is not None:
            await self._app_call("ping", self._app.integration.get_app)
        else:
            github, _, session = self._client(None, self._token)
            await self._call(session, "ping", Kind.READ, github.get_rate_limit)

    async def hook_deliveries(self, since: float) -> list[HookDelivery]:
        app = self._require_app("hook_deliveries")
        requester = app.integration.requester

        def work() -> list[HookDelivery]:
            found: list[HookDelivery] = []
            url: str | None = "/app/hook/deliveries"
            params: dict[str, object] | None = {"per_page": 100}
            while url:  # newest first, cursor-paginated through Link headers
                headers, data = requester.requestJsonAndCheck("GET", url, parameters=params)
                page = [_delivery(item) for item in data or []]
                found.extend(d for d in page if d.delivered_at >= since)
                if not page or page[-1].delivered_at < since:
                    break
                url, params = _next_link(headers.get("link") or headers.get("Link") or ""), None
            return found

        return await self._call(self._app_session, "hook_deliveries", Kind.READ, work)

    async def redeliver(self, delivery_id: int) -> None:
        app = self._require_app("redeliver")
        path = f"/app/hook/deliveries/{int(delivery_id)}/attempts"

        def work() -> None:
            app.integration.requester.requestJsonAndCheck("POST", path)

        await self._call(self._app_session, "redeliver", Kind.CREATE, work)

    def _require_app(self, op: str) -> GitHubApp:
        if self._app is None:
            raise GitHubError(f"GitHub {op}: webhook deliveries can be read only by a GitHub App, not with a token")
        return self._app

    # ---- sessions

    def _client(self, installation: int | None, token: str | None) -> tuple[Github, SwappableToken, _Session]:
        if installation not in self._clients:
            auth = SwappableToken()
            self._clients[installation] = (pygithub(self._api_url, self._timeout, auth), auth, _Session())
        client = self._clients[installation]
        client[1].value = token or ""
        return client

    async def _app_call(self, op: str, fn: Callable[[], T], write: bool = False) -> T:
        return await self._call(self._app_session, op, Kind.WRITE if write else Kind.READ, fn)

    async def _run(self, repo: str, op: str, kind: Kind, fn: Callable[[Repository], T]) -> T:
        _check_repo(repo)
        installation, token = None, self._token
        if self._app is not None:
            installation = await self._app.installation(repo, self._app_call)
            token = await self._app.token(installation, self._app_call)
        github, _, session = self._client(installation, token)
        try:
            return await self._call(session, op, kind, lambda: fn(github.get_repo(repo)), repo)
        except GitHubError as exc:
            if exc.status == 401 and self._app is not None and installation is not None:
                self._app.forget(installation)
            raise

    # ---- retries, rate limits and pacing

    async def _call(self, session: _Session, op: str, kind: Kind, fn: Callable[[], T], repo: str = "") -> T:
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

    async def _attempt(self, session: _Session, op: str, kind: Kind, fn: Callable[[], T]) -> T:
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


def _check_repo(repo: str) -> str:
    if not _REPO.fullmatch(repo):
        raise ValueError(f"repository must be owner/name, got {repo!r}")
    return repo


def _check_body(body: str) -> None:
    if len(body) > MAX_BODY:
        raise ValueError(f"body has {len(body)} characters, GitHub accepts at most {MAX_BODY}")


def _check_reaction(content: str) -> None:
    if content not in _REACTIONS:
        raise ValueError(f"reaction must be one of {sorted(_REACTIONS)}, got {content!r}")


def _quote(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")


def _issue_comment(r: Repository, comment_id: int) -> IssueComment:
    return IssueComment(r.requester, url=f"{r.url}/issues/comments/{comment_id}")  # lazy: no request


def _comment(c: IssueComment) -> CommentInfo:
    return CommentInfo(c.id, c.body or "", c.user.login if c.user else "", c.html_url or "")


def _next_link(header: str) -> str | None:
    for part in header.split(","):
        match = re.fullmatch(r'\s*<([^>]+)>\s*;\s*rel="next"\s*', part)
        if match:
            return match.group(1)
    return None


def _epoch_seconds(value: object) -> float:
    if not isinstance(value, str):
        return 0.0
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _delivery(item: dict[str, object]) -> HookDelivery:
    def number(key: str) -> int | None:
        value = item.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    action = item.get("action")
    return HookDelivery(
        id=number("id") or 0,
        guid=str(item.get("guid") or ""),
        delivered_at=_epoch_seconds(item.get("delivered_at")),
        status_code=number("status_code") or 0,
        event=str(item.get("event") or ""),
        action=action if isinstance(action, str) else None,
        redelivery=item.get("redelivery") is True,
        installation_id=number("installation_id"),
        repository_id=number("repository_id"),
    )


def _merged(p: PullRequest) -> bool:
    return p.merged_at is not None  # list answers carry merged_at but not merged


def _pull(p: PullRequest) -> PullInfo:
    labels = tuple(label.name for label in p.labels)
    reviewers = tuple(user.login for user in p.requested_reviewers)
    head = (p.head.ref, p.base.ref, p.state, _merged(p), bool(p.draft), p.html_url or "", labels, p.head.sha or "")
    return PullInfo(p.number, *head, reviewers)
