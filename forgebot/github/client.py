"""`GitHubPort` on PyGithub: blocking calls in threads, paced writes, retries as GitHub asks, token or App auth.

The retry rule, the rate-limit waits and the pacing live in forgebot/github/transport.py (`Transport`, which this
client builds on); the multi-step PyGithub work in pull_calls.py and hook_calls.py.

PyGithub's own retry and sleeps are off (its default retry re-sends a POST after a 502; its pacing sleeps inside
threads). Writes are paced with asyncio (transport.py), `write_interval` apart per token or installation. One PyGithub
`Requester` shares a connection object that is not thread-safe (PyGithub PR #2052), so the calls of one token or
installation run one at a time, as GitHub asks of integrations anyway.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from typing import TypeVar

import structlog
from github import Github, GithubException
from github.IssueComment import IssueComment
from github.PullRequest import PullRequest
from github.Repository import Repository

from forgebot.github import hook_calls, pull_calls
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
from forgebot.github.transport import CallObserver, Kind, Session, Transport

log = structlog.get_logger(__name__)
T = TypeVar("T")
_REPO = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
_REACTIONS = frozenset({"+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"})
_ROLES = frozenset({"admin", "maintain", "write", "triage", "read", "none"})
MAX_BODY = 65536


class PyGithubClient(Transport):
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
        super().__init__(
            write_interval=write_interval,
            max_attempts=max_attempts,
            backoff=backoff,
            max_rate_limit_wait=max_rate_limit_wait,
            secondary_rate_wait=secondary_rate_wait,
            observer=observer,
        )
        self._api_url = api_url.rstrip("/")
        self._timeout = timeout
        self._token = token
        self._app: GitHubApp | None = None
        if app_id is not None and private_key is not None:
            self._app = GitHubApp(self._api_url, timeout, app_id, private_key, token_refresh_margin)
        self._app_session = Session()
        # installation id (None with a token) -> PyGithub instance, its token, its session
        self._clients: dict[int | None, tuple[Github, SwappableToken, Session]] = {}

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
        requester = self._require_app("hook_deliveries").integration.requester
        return await self._app_call("hook_deliveries", lambda: hook_calls.deliveries(requester, since))

    async def redeliver(self, delivery_id: int) -> None:
        requester = self._require_app("redeliver").integration.requester
        work = lambda: hook_calls.redeliver(requester, delivery_id)  # noqa: E731
        await self._call(self._app_session, "redeliver", Kind.CREATE, work)

    def _require_app(self, op: str) -> GitHubApp:
        if self._app is None:
            raise GitHubError(f"GitHub {op}: webhook deliveries can be read only by a GitHub App, not with a token")
        return self._app

    # ---- sessions

    def _client(self, installation: int | None, token: str | None) -> tuple[Github, SwappableToken, Session]:
        if installation not in self._clients:
            auth = SwappableToken()
            self._clients[installation] = (pygithub(self._api_url, self._timeout, auth), auth, Session())
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


def _merged(p: PullRequest) -> bool:
    return p.merged_at is not None  # list answers carry merged_at but not merged


def _pull(p: PullRequest) -> PullInfo:
    labels = tuple(label.name for label in p.labels)
    reviewers = tuple(user.login for user in p.requested_reviewers)
    head = (p.head.ref, p.base.ref, p.state, _merged(p), bool(p.draft), p.html_url or "", labels, p.head.sha or "")
    return PullInfo(p.number, *head, reviewers)
