"""Opening a pull request in steps that each survive a failure of the one before: find the PR by its head
branch or create it (a create that answered 5xx or 422 may have landed: look again), then the label and the
review request, each only when missing. The caller saves the PR number between the two, so a later try (a
redelivered command, the next `/forge pick`) finds the PR and completes what is missing."""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from forgebot.github.port import GitHubError, GitHubPort, PullInfo

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class NewPull:
    title: str
    body: str
    head: str
    base: str
    draft: bool


async def find_or_create(github: GitHubPort, repo: str, new: NewPull) -> PullInfo:
    found = await github.find_pull(repo, new.head)
    if found is not None:
        return found
    try:
        return await github.create_pull(
            repo, title=new.title, body=new.body, head=new.head, base=new.base, draft=new.draft
        )
    except GitHubError as error:
        # 5xx or a dropped connection: the PR may exist anyway; 422: someone (we, before a crash) opened it.
        found = await github.find_pull(repo, new.head)
        if found is None:
            raise
        log.info("pull_found_after_failed_create", repo=repo, pull=found.number, status=error.status)
        return found


async def complete(github: GitHubPort, repo: str, pull: PullInfo, *, label: str, reviewer: str | None) -> None:
    """The label and the review request, each only if missing (a repeat would notify the reviewer again)."""
    if label not in pull.labels:
        await github.add_labels(repo, pull.number, [label])
    if reviewer and reviewer.lower() not in {r.lower() for r in pull.requested_reviewers}:
        try:
            await github.request_review(repo, pull.number, [reviewer])
        except GitHubError as error:  # the requester may not be able to review (the PR's author, a non-member)
            log.info("review_request_refused", repo=repo, pull=pull.number, status=error.status)


def state(pull: PullInfo) -> str:
    return "merged" if pull.merged else pull.state
