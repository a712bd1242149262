"""The narrow interface forgebot needs from GitHub, and the plain values it exchanges.

Handlers and the publisher depend on `GitHubPort` only; `client.py` implements it with PyGithub. Every method
is async (the implementation runs blocking calls in threads). `repo` is always "owner/name".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class GitHubError(Exception):
    """A GitHub call that failed after the client's own retries; `status` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NotFoundOnGitHub(GitHubError):
    """404: the issue, comment, file, branch or pull request does not exist (or is not visible to us)."""


@dataclass(frozen=True)
class RepoInfo:
    full_name: str
    default_branch: str
    clone_url: str
    private: bool = False
    # The merge methods the repository allows (GitHub's defaults when it does not say).
    allow_squash_merge: bool = True
    allow_merge_commit: bool = True
    allow_rebase_merge: bool = True


@dataclass(frozen=True)
class IssueInfo:
    number: int
    title: str
    body: str
    author: str
    labels: tuple[str, ...] = ()
    state: str = "open"
    is_pull_request: bool = False


@dataclass(frozen=True)
class CommentInfo:
    id: int
    body: str
    author: str
    html_url: str = ""


@dataclass(frozen=True)
class PullInfo:
    number: int
    head: str  # branch name
    base: str
    state: str  # "open" | "closed"
    merged: bool = False
    draft: bool = False
    html_url: str = ""
    labels: tuple[str, ...] = field(default=())
    head_sha: str = ""
    requested_reviewers: tuple[str, ...] = ()


@dataclass(frozen=True)
class CheckInfo:
    """One check of a commit: a check run (GitHub Actions and other Apps) or a commit status, with its outcome
    reduced to "success" (also neutral and skipped), "failure" (anything else that finished) or "pending"."""

    name: str
    state: str


@dataclass(frozen=True)
class HookDelivery:
    """One attempt by GitHub to deliver a webhook to the App. `guid` is the X-GitHub-Delivery header (a redelivery
    repeats it); `id` names this attempt (what a redelivery request takes). `status_code` 0: no HTTP answer."""

    id: int
    guid: str
    delivered_at: float  # epoch seconds
    status_code: int
    event: str
    action: str | None = None
    redelivery: bool = False
    installation_id: int | None = None
    repository_id: int | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300


class GitHubPort(Protocol):
    async def get_repo(self, repo: str) -> RepoInfo: ...

    async def permission(self, repo: str, user: str) -> str:
        """The user's permission on the repository: "admin", "maintain", "write", "triage", "read" or "none"."""
        ...

    async def get_issue(self, repo: str, number: int) -> IssueInfo: ...

    async def list_comments(self, repo: str, number: int) -> list[CommentInfo]: ...

    async def create_comment(self, repo: str, number: int, body: str) -> CommentInfo: ...

    async def edit_comment(self, repo: str, comment_id: int, body: str) -> None: ...

    async def react_to_comment(self, repo: str, comment_id: int, content: str) -> None:
        """`content` is one of GitHub's reaction names: "+1", "-1", "laugh", "confused", "heart", "hooray",
        "rocket", "eyes"."""
        ...

    async def react_to_issue(self, repo: str, number: int, content: str) -> None: ...

    async def read_file(self, repo: str, path: str, ref: str) -> str | None:
        """The text of a file at `ref`, or None when it does not exist."""
        ...

    async def list_dir(self, repo: str, path: str, ref: str) -> list[str] | None:
        """The names of the files (not folders) directly inside folder `path` at `ref`, sorted; None when there
        is no such folder."""
        ...

    async def find_pull(self, repo: str, head_branch: str) -> PullInfo | None:
        """The pull request (open or closed) whose head is `head_branch` in this repository, if any."""
        ...

    async def get_pull(self, repo: str, number: int) -> PullInfo: ...

    async def create_pull(self, repo: str, *, title: str, body: str, head: str, base: str, draft: bool) -> PullInfo: ...

    async def edit_pull_body(self, repo: str, number: int, body: str) -> None: ...

    async def request_review(self, repo: str, number: int, reviewers: list[str]) -> None: ...

    async def add_labels(self, repo: str, number: int, labels: list[str]) -> None: ...

    async def merge_pull(self, repo: str, number: int, *, method: str = "squash", sha: str | None = None) -> bool:
        """True when merged (also when it already was). GitHub's refusal (a draft, a merge method the repository
        does not allow, not mergeable, the head moved away from `sha`) raises GitHubError with its message."""
        ...

    async def mark_ready(self, repo: str, number: int) -> None:
        """Mark a draft pull request ready for review (GitHub's GraphQL API: REST cannot); no-op when it is."""
        ...

    async def commit_checks(self, repo: str, sha: str) -> list[CheckInfo]:
        """The check runs and commit statuses of a commit (the first 100 of each)."""
        ...

    async def own_login(self) -> str:
        """The login forgebot acts as: the token's user, or `<app slug>[bot]` for a GitHub App."""
        ...

    async def delete_branch(self, repo: str, branch: str) -> bool:
        """Deletes refs/heads/<branch>; False when it was already gone."""
        ...

    async def git_token(self, repo: str) -> str | None:
        """A token git may use over https for this repository (an installation token for an App), or None."""
        ...

    def known_tokens(self) -> tuple[str, ...]:
        """Every credential this client holds or has created (its token, GitHub App installation tokens), so
        that what forgebot posts can be scrubbed of them. Not async: no request, called at each redaction."""
        ...

    async def ping(self) -> None:
        """A cheap authenticated read, for readiness checks; raises GitHubError when GitHub is not reachable."""
        ...

    async def hook_deliveries(self, since: float) -> list[HookDelivery]:
        """The App's webhook deliveries made at or after `since` (epoch seconds), newest first.
        Authenticated as the App (JWT); raises GitHubError when forgebot is not a GitHub App."""
        ...

    async def redeliver(self, delivery_id: int) -> None:
        """Ask GitHub to deliver this delivery again (App only). Not repeated after a 5xx: it may have landed."""
        ...
