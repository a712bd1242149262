"""The blocking PyGithub work behind the pull-request calls of `PyGithubClient` that need more than one line:
merging, marking ready for review, and reading a commit's checks. Run in the client's threads, never on the loop.
"""

from __future__ import annotations

from typing import Any

from github import GithubException
from github.GithubObject import NotSet
from github.Repository import Repository

from forgebot.github.port import CheckInfo

_PASSED = frozenset({"success", "neutral", "skipped"})
_FAILED_STATUSES = frozenset({"failure", "error"})
MERGE_METHODS = ("merge", "squash", "rebase")


def merge(r: Repository, number: int, method: str, sha: str | None) -> bool:
    """Merge; when GitHub refuses (405 not mergeable, a draft, a method the repository disallows; 409 the head
    moved), True if it is merged anyway (our own earlier try that answered 5xx), else GitHub's refusal raises."""
    try:
        return bool(r.get_pull(number).merge(merge_method=method, sha=sha or NotSet).merged)
    except GithubException as exc:
        if exc.status not in (405, 409) or r.get_pull(number).merged_at is None:
            raise
        return True


def mark_ready(r: Repository, number: int) -> None:
    pull = r.get_pull(number)
    if pull.draft:
        pull.mark_ready_for_review()  # GraphQL markPullRequestReadyForReview


def checks(r: Repository, sha: str) -> list[CheckInfo]:
    """Commit statuses (GET .../commits/{sha}/status) then check runs (GET .../commits/{sha}/check-runs)."""
    base = f"{r.url}/commits/{sha}"
    _, status = r.requester.requestJsonAndCheck("GET", f"{base}/status", parameters={"per_page": 100})
    _, runs = r.requester.requestJsonAndCheck("GET", f"{base}/check-runs", parameters={"per_page": 100})
    found = [_status(item) for item in status.get("statuses") or []]
    return found + [_run(item) for item in runs.get("check_runs") or []]


def _status(item: dict[str, Any]) -> CheckInfo:
    state = str(item.get("state") or "pending")
    outcome = "failure" if state in _FAILED_STATUSES else ("success" if state == "success" else "pending")
    return CheckInfo(str(item.get("context") or "status"), outcome)


def _run(item: dict[str, Any]) -> CheckInfo:
    name = str(item.get("name") or "check")
    if item.get("status") != "completed":
        return CheckInfo(name, "pending")
    return CheckInfo(name, "success" if item.get("conclusion") in _PASSED else "failure")
