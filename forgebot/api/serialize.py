"""The JSON shapes of the API (documented in openapi.yaml). Pure: no IO; the clock comes in as `now`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from forgebot.core.models import Attempt, AttemptStatus, Task, task_status
from forgebot.core.scoring import Comparison, Ranked
from forgebot.engine.events import EngineEvent
from forgebot.engine.housekeeping import CleanupReport
from forgebot.engine.workspaces import MergeResult

Json = dict[str, Any]
Redact = Callable[[str], str]  # masks the server's secrets in text an agent wrote (ApiContext.redact)


def _masked(redact: Redact, text: str | None) -> str | None:
    return None if text is None else redact(text)


def attempt_json(attempt: Attempt, now: float, redact: Redact, log_tail: str | None = None) -> Json:
    """Every text an agent or a check wrote (progress, error, final message, check output, log tail) goes
    through `redact`: an agent may echo a secret it was never meant to have."""
    usage = attempt.usage
    body: Json = {
        "id": attempt.id,
        "task_id": attempt.task_id,
        "agent": attempt.agent,
        "executor": attempt.profile.executor,
        "model": attempt.profile.model,
        "tier": attempt.tier,
        "branch": attempt.branch,
        "worktree": attempt.worktree,
        "status": attempt.status.value,
        "created_at": attempt.created_at,
        "started_at": attempt.started_at,
        "finished_at": attempt.finished_at,
        "elapsed": attempt.elapsed(now),
        "exit_code": attempt.exit_code,
        "error": _masked(redact, attempt.error),
        "progress": _masked(redact, attempt.progress),
        "session_id": attempt.session_id,
        "final_message": _masked(redact, attempt.final_message),
        "diff": {
            "files": attempt.diff.files,
            "insertions": attempt.diff.insertions,
            "deletions": attempt.diff.deletions,
        },
        "checks": [
            {
                "name": check.name,
                "passed": check.passed,
                "exit_code": check.exit_code,
                "duration": check.duration,
                "timed_out": check.timed_out,
                "output_tail": _masked(redact, check.output_tail),
            }
            for check in attempt.checks
        ],
        "usage": {
            "tokens_in": usage.tokens_in,
            "tokens_out": usage.tokens_out,
            "cache_read": usage.cache_read,
            "cache_write": usage.cache_write,
            "cost_usd": usage.cost_usd,
            "turns": usage.turns,
        },
        "commit_sha": attempt.commit_sha,
        "followup_pending": attempt.followup is not None and not attempt.status.terminal,
    }
    if log_tail is not None:
        body["log_tail"] = redact(log_tail)
    return body


def task_json(
    task: Task, attempts: Sequence[Attempt], now: float, redact: Redact, github: Json | None = None
) -> Json:
    """`github`: the issue, pull request and branch links of a task from an issue (forgebot/api/links.py)."""
    return {
        "id": task.id,
        "title": task.title,
        "description": task.description,
        "repo": task.repo,
        "base_branch": task.base_branch,
        "base_sha": task.base_sha,
        "strategy": task.strategy.value,
        "quality_threshold": task.quality_threshold,
        "checks": [{"name": c.name, "run": list(c.run), "timeout": c.timeout} for c in task.checks],
        "created_at": task.created_at,
        "source": task.source,
        "external_ref": task.external_ref,
        "status": task_status([a.status for a in attempts]).value,
        "attempts": [attempt_json(a, now, redact) for a in attempts],
        "github": github,
    }


def _ranked(ranked: Ranked) -> Json:
    return {
        "attempt_id": ranked.attempt_id,
        "agent": ranked.agent,
        "rank": ranked.rank,
        "quality": ranked.quality,
        "eligible": ranked.eligible,
        "reasons": list(ranked.reasons),
    }


def comparison_json(task_id: int, comparison: Comparison) -> Json:
    return {
        "task_id": task_id,
        "ranking": [_ranked(r) for r in comparison.ranking],
        "winner": _ranked(comparison.winner) if comparison.winner else None,
        "verdict": comparison.verdict,
        "wall_time": comparison.wall_time,
        "sum_time": comparison.sum_time,
        "speedup": comparison.speedup,
        "total_cost": comparison.total_cost,
        "cost_complete": comparison.cost_complete,
    }


def progress_json(attempts_by_task: Sequence[Sequence[Attempt]]) -> Json:
    """Counts over every attempt of the tasks; `percentage` is the share finished (100 when there is none)."""
    statuses = [a.status for attempts in attempts_by_task for a in attempts]
    total = len(statuses)
    completed = sum(s.terminal for s in statuses)
    succeeded = statuses.count(AttemptStatus.SUCCEEDED)
    return {
        "tasks": len(attempts_by_task),
        "total": total,
        "queued": statuses.count(AttemptStatus.QUEUED),
        "in_progress": sum(s.active for s in statuses),
        "completed": completed,
        "succeeded": succeeded,
        "failed": completed - succeeded,
        "percentage": round(100.0 * completed / total, 1) if total else 100.0,
    }


def event_json(event: EngineEvent, now: float, redact: Redact) -> Json:
    return {
        "kind": event.kind.value,
        "task_id": event.task_id,
        "attempt": attempt_json(event.attempt, now, redact) if event.attempt else None,
    }


def cleanup_json(report: CleanupReport) -> Json:
    return {
        "removed": list(report.removed),
        "kept": report.kept,
        "bytes_before": report.bytes_before,
        "bytes_after": report.bytes_after,
        "dry_run": report.dry_run,
    }


def worktree_json(attempt: Attempt, size: int) -> Json:
    return {
        "attempt_id": attempt.id,
        "task_id": attempt.task_id,
        "agent": attempt.agent,
        "status": attempt.status.value,
        "path": attempt.worktree,
        "branch": attempt.branch,
        "bytes": size,
        "finished_at": attempt.finished_at,
    }


def merge_json(result: MergeResult) -> Json:
    return {
        "base_branch": result.base_branch,
        "old_sha": result.old_sha,
        "new_sha": result.new_sha,
        "rebased": result.rebased,
    }

