"""Finishing work: merging an attempt, deleting attempts, removing worktrees.

Blocking; the engine runs these in threads."""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import structlog

from forgebot.core.models import Attempt, Task
from forgebot.engine.workspaces import MergeResult, Workspaces

log = structlog.get_logger(__name__)


class EngineError(Exception):
    """An operation the user asked for cannot be done; the message says why."""


@dataclass(frozen=True)
class CleanupReport:
    removed: tuple[str, ...]
    kept: int
    bytes_before: int
    bytes_after: int
    dry_run: bool
    # Filled by the scheduled cleanup (forgebot/scheduler.py): remote forge/ branches deleted, as "repo:branch".
    branches_deleted: tuple[str, ...] = ()
    branch_errors: int = 0


def merge_attempt(workspaces: Workspaces, task: Task, attempt: Attempt, rebase: bool) -> MergeResult:
    if attempt.task_id != task.id:
        raise EngineError(f"attempt {attempt.id} belongs to task {attempt.task_id}, not task {task.id}")
    if not attempt.status.terminal:
        raise EngineError(f"attempt {attempt.id} is still {attempt.status.value}; wait for it or cancel it")
    if attempt.diff.empty:
        raise EngineError(f"attempt {attempt.id} ({attempt.agent}) changed nothing; there is nothing to merge")
    if not os.path.isdir(attempt.worktree):
        raise EngineError(
            f"attempt {attempt.id}'s worktree was cleaned up; its work is on branch {attempt.branch} "
            f"(git merge --squash {attempt.branch})"
        )
    message = f"{task.title}\n\nSquashed from {attempt.branch} (attempt {attempt.id}, agent {attempt.agent}).\n"
    result = workspaces.squash_merge(task.repo, task.base_branch, task.base_sha, attempt.worktree, message, rebase)
    log.info("attempt_merged", task=task.id, attempt=attempt.id, base=task.base_branch, sha=result.new_sha)
    return result


def discard(workspaces: Workspaces, repo: str, attempt: Attempt, paths: Sequence[str]) -> None:
    """Remove an attempt's worktree, branch and the given files (log, home)."""
    workspaces.remove(repo, attempt.worktree, attempt.branch)
    for path in paths:
        if os.path.isdir(path):
            _remove_tree(path)
        elif os.path.exists(path):
            os.remove(path)


def _remove_tree(path: str) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def cleanup_worktrees(
    workspaces: Workspaces,
    attempts: Sequence[tuple[str, Attempt]],
    roots: Sequence[str],
    now: float,
    older_than: float,
    dry_run: bool,
    at_once: Collection[int] = (),
) -> CleanupReport:
    """Remove the worktrees of finished tasks' attempts that finished at least `older_than` seconds ago (at once
    for the tasks in `at_once`: their pull request was merged or closed). A task with an attempt still queued or
    running keeps every worktree (a merge or follow-up may need them). Branches stay (they hold the work);
    only paths forgebot recorded are touched."""
    before = sum(workspaces.disk_usage(root) for root in roots)
    unfinished = {attempt.task_id for _, attempt in attempts if not attempt.status.terminal}
    removed, kept = [], 0
    for repo, attempt in attempts:
        if not os.path.exists(attempt.worktree):
            continue
        if not _due(attempt, unfinished, at_once, now, older_than):
            kept += 1
            continue
        removed.append(attempt.worktree)
        if not dry_run:
            workspaces.remove(repo, attempt.worktree)
    if not dry_run:
        for repo in {repo for repo, _ in attempts}:
            workspaces.prune(repo)
    after = sum(workspaces.disk_usage(root) for root in roots)
    log.debug("worktrees_cleaned", removed=len(removed), kept=kept, bytes_before=before, bytes_after=after)
    return CleanupReport(tuple(removed), kept, before, after, dry_run)


def _due(attempt: Attempt, unfinished: Collection[int], at_once: Collection[int], now: float, ttl: float) -> bool:
    if not attempt.status.terminal or attempt.task_id in unfinished:
        return False
    if attempt.task_id in at_once:
        return True
    return attempt.finished_at is not None and now - attempt.finished_at >= ttl
