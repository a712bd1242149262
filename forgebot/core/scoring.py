"""Rank the attempts of one task and name a winner. Pure: no IO, no clock.

Rules:
- Only terminal attempts are ranked as finished. Unfinished ones go last (running before queued, then by id),
  are never eligible, score 0 and carry the single reason "still running" or "queued".
- A finished attempt without a diff counts as a failure: quality 0, not eligible, reason "no changes"; its
  checks say nothing about work, so it ranks as if none of them passed and as not clean.
- A run is clean when the agent itself did not fail: status succeeded, or failed only because checks failed
  (error is None or starts with "checks failed"). Timed out, cancelled and interrupted runs are never clean.
- Eligible (could win) = finished, has a diff, clean. The winner must also pass all its checks; an attempt
  with no checks passes but is "unverified", and its checks count as half passed for ranking and quality.
- No winner is named while any attempt is unfinished: a later one could still beat the current leader.
- Ranking key, best first: eligible with all checks passed, fraction of checks passed, clean run (that
  made changes), smaller diff (lines), lower cost (unknown after every known cost), shorter duration
  (unknown after every known one), then attempt id.
- Quality in [0, 1]: 0 unless eligible; else 0.4 for the clean run + 0.4 * fraction of checks passed
  + 0.2 * efficiency. Efficiency is the mean of three scores relative to the best eligible attempt:
  smallest_lines / lines, cheapest / cost, fastest / duration. A cost or duration scores 1.0 when no eligible
  attempt knows it and 0.5 when unknown only for this one. A clean run passing all checks thus scores >= 0.8.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from forgebot.core.models import Attempt, AttemptStatus

_CLEAN_FAILURE_PREFIX = "checks failed"
_UNVERIFIED_SCORE = 0.5  # checks score of an attempt without checks
_UNKNOWN_SCORE = 0.5  # efficiency score of a cost or duration unknown only for this attempt
_STOPPED_REASONS = {
    AttemptStatus.TIMED_OUT: "timed out",
    AttemptStatus.CANCELLED: "cancelled",
    AttemptStatus.INTERRUPTED: "interrupted",
}


class ScoringError(ValueError):
    """The attempts handed to compare() are inconsistent."""


@dataclass(frozen=True)
class Ranked:
    attempt_id: int
    agent: str
    rank: int  # 1 = best
    quality: float  # in [0, 1], rounded to 2 decimals
    eligible: bool  # could be the winner
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Comparison:
    ranking: tuple[Ranked, ...]  # best first
    winner: Ranked | None
    verdict: str
    wall_time: float | None  # first start to last finish over attempts that started and finished
    sum_time: float  # sum of those attempts' own durations
    speedup: float | None  # sum_time / wall_time
    total_cost: float | None  # sum of known costs; None if no cost is known
    cost_complete: bool  # False if any finished attempt's cost is unknown


@dataclass(frozen=True)
class _Facts:
    """What ranking needs to know about one attempt, derived once."""

    attempt: Attempt
    finished: bool
    clean: bool
    eligible: bool
    candidate: bool  # eligible and all checks passed: may be the winner
    check_score: float  # fraction of checks passed; 0 without a diff, 0.5 when unverified
    lines: int
    cost: float | None
    duration: float | None


@dataclass(frozen=True)
class _Field:
    """The values of one measure among eligible attempts, for relative scores and superlatives."""

    known: tuple[float, ...]

    def relative(self, value: float | None) -> float:
        if not self.known:
            return 1.0
        if value is None:
            return _UNKNOWN_SCORE
        return 1.0 if value <= 0 else min(self.known) / value

    def is_best(self, value: float) -> bool:
        # A superlative only means something when there was a comparison.
        return len(self.known) > 1 and value == min(self.known)


@dataclass(frozen=True)
class _Fields:
    """The measures that efficiency and superlatives compare."""

    lines: _Field
    cost: _Field
    duration: _Field


def compare(attempts: Sequence[Attempt]) -> Comparison:
    """Rank the attempts of one task, best first, and name the winner if there is one yet."""
    _validate(attempts)
    facts = sorted((_facts(a) for a in attempts), key=_sort_key)
    fields = _fields(facts)
    ranking = tuple(
        Ranked(
            attempt_id=f.attempt.id,
            agent=f.attempt.agent,
            rank=position,
            quality=_quality(f, fields),
            eligible=f.eligible,
            reasons=_reasons(f, fields),
        )
        for position, f in enumerate(facts, start=1)
    )
    has_winner = bool(facts) and facts[0].candidate and all(f.finished for f in facts)
    wall_time, sum_time = _times(attempts)
    return Comparison(
        ranking=ranking,
        winner=ranking[0] if has_winner else None,
        verdict=_verdict(facts, has_winner),
        wall_time=wall_time,
        sum_time=sum_time,
        speedup=sum_time / wall_time if wall_time else None,
        total_cost=_total_cost(attempts),
        cost_complete=all(a.usage.cost_usd is not None for a in attempts if a.status.terminal),
    )


def best_quality(attempts: Sequence[Attempt]) -> float:
    """The best quality any finished attempt reached, 0.0 if none (unfinished attempts score 0)."""
    return max((r.quality for r in compare(attempts).ranking), default=0.0)


def _validate(attempts: Sequence[Attempt]) -> None:
    task_ids = sorted({a.task_id for a in attempts})
    if len(task_ids) > 1:
        raise ScoringError(f"attempts belong to different tasks: {', '.join(map(str, task_ids))}")
    seen: set[int] = set()
    for a in attempts:
        if a.id in seen:
            raise ScoringError(f"attempt id {a.id} appears more than once")
        seen.add(a.id)
        if a.started_at is not None and a.finished_at is not None and a.finished_at < a.started_at:
            raise ScoringError(f"attempt {a.id} finished before it started")
        if a.usage.cost_usd is not None and a.usage.cost_usd < 0:
            raise ScoringError(f"attempt {a.id} has a negative cost: {a.usage.cost_usd}")


def _is_clean(a: Attempt) -> bool:
    if a.status is AttemptStatus.SUCCEEDED:
        return True
    return a.status is AttemptStatus.FAILED and (a.error is None or a.error.startswith(_CLEAN_FAILURE_PREFIX))


def _check_score(a: Attempt) -> float:
    if a.diff.empty:
        return 0.0
    if not a.checks:
        return _UNVERIFIED_SCORE
    return sum(c.passed for c in a.checks) / len(a.checks)


def _duration(a: Attempt) -> float | None:
    if a.started_at is None or a.finished_at is None:
        return None
    return a.finished_at - a.started_at


def _facts(a: Attempt) -> _Facts:
    finished = a.status.terminal
    clean = finished and _is_clean(a)
    eligible = clean and not a.diff.empty
    return _Facts(
        attempt=a,
        finished=finished,
        clean=clean,
        eligible=eligible,
        candidate=eligible and a.checks_passed,
        check_score=_check_score(a),
        lines=a.diff.lines,
        cost=a.usage.cost_usd,
        duration=_duration(a),
    )


def _unknown_last(value: float | None) -> tuple[int, float]:
    return (1, 0.0) if value is None else (0, value)


def _sort_key(f: _Facts) -> tuple[float, ...]:
    if not f.finished:
        return (1, f.attempt.status is AttemptStatus.QUEUED, f.attempt.id)
    return (
        0,
        not f.candidate,
        -f.check_score,
        not f.eligible,
        f.lines,
        *_unknown_last(f.cost),
        *_unknown_last(f.duration),
        f.attempt.id,
    )


def _fields(facts: Sequence[_Facts]) -> _Fields:
    eligible = [f for f in facts if f.eligible]
    return _Fields(
        lines=_Field(tuple(float(f.lines) for f in eligible)),
        cost=_Field(tuple(f.cost for f in eligible if f.cost is not None)),
        duration=_Field(tuple(f.duration for f in eligible if f.duration is not None)),
    )


def _quality(f: _Facts, fields: _Fields) -> float:
    if not f.eligible:
        return 0.0
    efficiency = (
        fields.lines.relative(f.lines) + fields.cost.relative(f.cost) + fields.duration.relative(f.duration)
    ) / 3
    return round(0.4 + 0.4 * f.check_score + 0.2 * efficiency, 2)


def _reasons(f: _Facts, fields: _Fields) -> tuple[str, ...]:
    a = f.attempt
    if not f.finished:
        return ("queued",) if a.status is AttemptStatus.QUEUED else ("still running",)
    reasons = _status_reasons(f)
    if a.diff.empty:
        reasons.append("no changes")
    else:
        reasons.append(_checks_reason(a))
        reasons.append(_diff_reason(f, fields))
    reasons.append(_cost_reason(f, fields))
    if f.duration is not None:
        best = f.eligible and fields.duration.is_best(f.duration)
        reasons.append(f"fastest ({_seconds(f.duration)})" if best else f"took {_seconds(f.duration)}")
    return tuple(reasons)


def _status_reasons(f: _Facts) -> list[str]:
    a = f.attempt
    if a.status in _STOPPED_REASONS:
        return [_STOPPED_REASONS[a.status]]
    if not f.clean:
        return [f"agent failed: {a.error}"]
    return []


def _checks_reason(a: Attempt) -> str:
    total = len(a.checks)
    if total == 0:
        return "no checks (unverified)"
    failed = [c.name for c in a.checks if not c.passed]
    if not failed:
        return f"all {total} checks passed" if total > 1 else "1 check passed"
    return f"{len(failed)} of {_plural(total, 'check')} failed: {', '.join(failed)}"


def _diff_reason(f: _Facts, fields: _Fields) -> str:
    if f.eligible and fields.lines.is_best(f.lines):
        return f"smallest diff ({_plural(f.lines, 'line')})"
    return f"diff of {_plural(f.lines, 'line')}"


def _cost_reason(f: _Facts, fields: _Fields) -> str:
    if f.cost is None:
        return "cost unknown"
    if f.eligible and fields.cost.is_best(f.cost):
        return f"cheapest ({_money(f.cost)})"
    return f"cost {_money(f.cost)}"


def _verdict(facts: Sequence[_Facts], has_winner: bool) -> str:
    if has_winner:
        return _winner_verdict(facts[0], facts[1] if len(facts) > 1 else None)
    pending = _pending_phrase(facts)
    if pending:
        leader = f"; {facts[0].attempt.agent} leads so far" if facts[0].candidate else ""
        return f"No winner yet: {pending}{leader}."
    if not facts:
        return "No winner: there are no attempts."
    if any(f.eligible for f in facts):
        return "No winner: no attempt passed its checks."
    return "No winner: no attempt ran cleanly and produced changes."


def _pending_phrase(facts: Sequence[_Facts]) -> str:
    running = sum(f.attempt.status.active for f in facts)
    queued = sum(f.attempt.status is AttemptStatus.QUEUED for f in facts)
    if running and queued:
        return f"{_plural(running, 'attempt')} still running, {queued} queued"
    if running:
        return f"{_plural(running, 'attempt')} still running"
    return f"{_plural(queued, 'attempt')} queued" if queued else ""


def _winner_verdict(winner: _Facts, runner_up: _Facts | None) -> str:
    diff = f" with a diff of {_plural(winner.lines, 'line')}"
    if runner_up is None:
        story = _winner_head(winner) + diff
    elif runner_up.candidate:
        story = _winner_head(winner) + _decider(winner, runner_up)
    elif winner.attempt.checks:
        story = "the only attempt that passed all checks," + diff
    else:
        story = "the only clean change (unverified)," + diff
    cost = f" at {_money(winner.cost)}" if winner.cost is not None else ", cost unknown"
    return f"{winner.attempt.agent} wins: {story}{cost}."


def _winner_head(winner: _Facts) -> str:
    return "all checks passed" if winner.attempt.checks else "no checks configured (unverified)"


def _decider(winner: _Facts, runner_up: _Facts) -> str:
    """The first ranking measure on which the winner beat the runner-up, as a clause. Sorting put known
    costs and durations first, so the winner's is unknown only when the runner-up's is too."""
    if winner.check_score != runner_up.check_score:
        return " (the others were unverified)"
    if winner.lines != runner_up.lines:
        return f" with the smallest diff ({_plural(winner.lines, 'line')})"
    if winner.cost != runner_up.cost:
        return " with an equal diff and the lowest cost"
    if winner.duration is not None and winner.duration != runner_up.duration:
        return f" with an equal diff and cost, fastest ({_seconds(winner.duration)})"
    return f" (tied with {runner_up.attempt.agent}; created first)"


def _times(attempts: Sequence[Attempt]) -> tuple[float | None, float]:
    spans = [(a.started_at, a.finished_at) for a in attempts if a.started_at is not None and a.finished_at is not None]
    if not spans:
        return None, 0.0
    wall = max(end for _, end in spans) - min(start for start, _ in spans)
    return wall, sum(end - start for start, end in spans)


def _total_cost(attempts: Sequence[Attempt]) -> float | None:
    costs = [a.usage.cost_usd for a in attempts if a.usage.cost_usd is not None]
    return sum(costs) if costs else None


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _money(usd: float) -> str:
    # Sub-cent runs are common with cheap models; two decimals would show them as free.
    return f"${usd:.4f}" if 0 < usd < 0.01 else f"${usd:.2f}"


def _seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s"
