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

    async def find_pull(self, repo: str, head_branch: str) -> PullInfo | None:
        """The pull request (open or closed) whose head is `head_branch` in this repository, if any."""
        ...

    async def get_pull(self, repo: str, number: int) -> PullInfo: ...

    async def create_pull(self, repo: str, *, title: str, body: str, head: str, base: str, draft: bool) -> PullInfo: ...

    async def edit_pull_body(self, repo: str, number: int, body: str) -> None: ...

    async def request_review(self, repo: str, number: int, reviewers: list[str]) -> None: ...

    async def add_labels(self, repo: str, number: int, labels: list[str]) -> None: ...

    async def merge_pull(self, repo: str, number: int, *, method: str = "squash") -> bool:
        """True when merged; False when GitHub refused (not mergeable, checks failing, head moved)."""
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
