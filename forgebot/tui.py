"""Terminal rendering with rich: the live attempt table, the comparison, task and process lists."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from forgebot.core.models import Attempt, AttemptStatus, Task, task_status
from forgebot.core.prompt import format_duration
from forgebot.core.scoring import Comparison

STATUS_STYLE = {
    AttemptStatus.QUEUED: "dim",
    AttemptStatus.PREPARING: "cyan",
    AttemptStatus.RUNNING: "yellow",
    AttemptStatus.CHECKING: "blue",
    AttemptStatus.SUCCEEDED: "green",
    AttemptStatus.FAILED: "red",
    AttemptStatus.TIMED_OUT: "red",
    AttemptStatus.CANCELLED: "magenta",
    AttemptStatus.INTERRUPTED: "magenta",
}


def money(cost: float | None) -> str:
    if cost is None:
        return "unknown"
    return f"${cost:.4f}" if cost < 1 else f"${cost:.2f}"


def checks_cell(attempt: Attempt, expected: int) -> str:
    if not attempt.checks:
        return "-" if attempt.status is not AttemptStatus.CHECKING else "…"
    passed = sum(c.passed for c in attempt.checks)
    mark = "✓" if passed == len(attempt.checks) else "✗"
    return f"{mark} {passed}/{max(expected, len(attempt.checks))}"


def tokens_cell(attempt: Attempt) -> str:
    usage = attempt.usage
    if usage.tokens_in is None and usage.tokens_out is None:
        return "-"
    return f"{usage.tokens_in or 0:,}/{usage.tokens_out or 0:,}"


def attempts_table(task: Task, attempts: Sequence[Attempt], now: float) -> Table:
    status = task_status([a.status for a in attempts])
    table = Table(title=f"Task {task.id}: {task.title}  [{status.value}]", title_justify="left", expand=False)
    for column in (
        "#",
        "agent",
        "status",
        "elapsed",
        "files",
        "±lines",
        "checks",
        "tokens in/out",
        "cost",
        "branch",
    ):
        table.add_column(column, no_wrap=True)
    table.add_column("progress", overflow="ellipsis", max_width=48)
    for attempt in attempts:
        elapsed = attempt.elapsed(now)
        diff = attempt.diff
        detail = attempt.error if attempt.error and attempt.status.terminal else attempt.progress
        table.add_row(
            str(attempt.id),
            attempt.agent,
            Text(attempt.status.value, style=STATUS_STYLE[attempt.status]),
            format_duration(elapsed) if elapsed is not None else "-",
            str(diff.files) if attempt.status.terminal or attempt.status is AttemptStatus.CHECKING else "-",
            f"+{diff.insertions}/-{diff.deletions}" if not diff.empty else "-",
            checks_cell(attempt, len(task.checks)),
            tokens_cell(attempt),
            money(attempt.usage.cost_usd) if attempt.status is not AttemptStatus.QUEUED else "-",
            attempt.branch,
            (detail or "").replace("\n", " "),
        )
    return table


def comparison_view(comparison: Comparison, attempts: Sequence[Attempt]) -> RenderableType:
    by_id = {a.id: a for a in attempts}
    table = Table(title="Comparison", title_justify="left")
    for column in ("rank", "#", "agent", "quality", "checks", "±lines", "cost", "time"):
        table.add_column(column)
    for ranked in comparison.ranking:
        attempt = by_id[ranked.attempt_id]
        duration = (
            format_duration(attempt.finished_at - attempt.started_at)
            if attempt.finished_at is not None and attempt.started_at is not None
            else "-"
        )
        winner = comparison.winner is not None and comparison.winner.attempt_id == ranked.attempt_id
        table.add_row(
            ("🏆 " if winner else "") + str(ranked.rank),
            str(ranked.attempt_id),
            ranked.agent,
            f"{ranked.quality:.2f}",
            checks_cell(attempt, len(attempt.checks)),
            str(attempt.diff.lines),
            money(attempt.usage.cost_usd),
            duration,
        )
    lines = [f"{r.rank}. {r.agent}: {'; '.join(r.reasons)}" for r in comparison.ranking]
    lines.append(comparison.verdict)
    if comparison.speedup is not None and comparison.wall_time is not None:
        lines.append(
            f"Wall time {format_duration(comparison.wall_time)} for "
            f"{format_duration(comparison.sum_time)} of agent time: "
            f"{comparison.speedup:.2f}x faster than running them one by one."
        )
    total = money(comparison.total_cost)
    lines.append(f"Total cost: {total}" + ("" if comparison.cost_complete else " (some costs unknown)"))
    return Group(table, Text("\n".join(lines)))


def tasks_table(rows: Sequence[tuple[Task, Sequence[Attempt]]]) -> Table:
    table = Table(title="Tasks", title_justify="left")
    for column in ("#", "title", "status", "attempts", "base", "agents"):
        table.add_column(column)
    for task, attempts in rows:
        table.add_row(
            str(task.id),
            task.title,
            task_status([a.status for a in attempts]).value,
            str(len(attempts)),
            task.base_branch,
            ", ".join(a.agent for a in attempts),
        )
    return table


def processes_table(rows: Sequence[tuple[Attempt, bool, float | None]], now: float) -> Table:
    """rows: (attempt, process alive, RSS in MiB or None)."""
    table = Table(title="Agent processes", title_justify="left")
    for column in ("task", "#", "agent", "status", "pid", "alive", "rss", "elapsed", "owner", "progress"):
        table.add_column(column, no_wrap=True)
    for attempt, alive, rss in rows:
        elapsed = attempt.elapsed(now)
        table.add_row(
            str(attempt.task_id),
            str(attempt.id),
            attempt.agent,
            Text(attempt.status.value, style=STATUS_STYLE[attempt.status]),
            str(attempt.pid or "-"),
            "yes" if alive else "no",
            f"{rss:.0f} MiB" if rss is not None else "-",
            format_duration(elapsed) if elapsed is not None else "-",
            attempt.owner or "-",
            attempt.progress[:40],
        )
    return table
