"""The fields of the one `task_summary` log line written when a task finishes. Pure: no IO, no clock."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from forgebot.core.models import Attempt, Task, task_status
from forgebot.core.scoring import compare


def task_summary(task: Task, attempts: Sequence[Attempt]) -> dict[str, object]:
    """Status, attempts by status, winner, times, cost and tokens of a finished task.

    `wall_time` is what the requester waited (task created → last attempt finished); `run_time` is first start
    to last finish. Unknown cost or tokens are None, never a false 0."""
    comparison = compare(attempts)
    finishes = [a.finished_at for a in attempts if a.finished_at is not None]
    by_status: dict[str, int] = {}
    for attempt in attempts:
        by_status[attempt.status.value] = by_status.get(attempt.status.value, 0) + 1
    winner = comparison.winner
    return {
        "task": task.id,
        "source": task.source,
        "ref": task.external_ref,
        "status": task_status([a.status for a in attempts]).value,
        "attempts": len(attempts),
        "by_status": by_status,
        "winner": winner.agent if winner else None,
        "winner_attempt": winner.attempt_id if winner else None,
        "wall_time": round(max(finishes) - task.created_at, 3) if finishes else None,
        "run_time": None if comparison.wall_time is None else round(comparison.wall_time, 3),
        "cost": comparison.total_cost,
        "cost_complete": comparison.cost_complete,
        "tokens_in": _total(a.usage.tokens_in for a in attempts),
        "tokens_out": _total(a.usage.tokens_out for a in attempts),
    }


def _total(values: Iterable[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None
