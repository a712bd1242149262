"""Ranking, quality, verdict and totals of forgebot.core.scoring, one table per rule."""

from __future__ import annotations

import pytest

from forgebot.core.models import AgentProfile, Attempt, AttemptStatus, CheckResult, DiffStats, Usage
from forgebot.core.scoring import Comparison, ScoringError, best_quality, compare

S = AttemptStatus


def att(
    attempt_id: int,
    agent: str = "",
    status: AttemptStatus = S.SUCCEEDED,
    *,
    error: str | None = None,
    lines: int | None = 10,
    checks: str = "tests,lint",
    failed: str = "",
    cost: float | None = 0.01,
    start: float | None = 0.0,
    end: float | None = 10.0,
    task_id: int = 1,
) -> Attempt:
    """An attempt; `lines=None` means no diff, `checks`/`failed` are comma-separated check names."""
    failing = set(failed.split(",")) if failed else set()
    results = tuple(
        CheckResult(name=name, passed=name not in failing, exit_code=1 if name in failing else 0, duration=1.0)
        for name in (checks.split(",") if checks else [])
    )
    name = agent or f"agent{attempt_id}"
    return Attempt(
        id=attempt_id,
        task_id=task_id,
        profile=AgentProfile(name=name, executor="command"),
        branch=f"forgebot/{task_id}/{name}",
        worktree=f"/tmp/wt/{attempt_id}",
        status=status,
        created_at=0.0,
        started_at=start,
        finished_at=end,
        error=error,
        diff=DiffStats() if lines is None else DiffStats(files=1, insertions=lines, deletions=0),
        checks=results,
        usage=Usage(cost_usd=cost),
    )


def only(comparison: Comparison, attempt_id: int) -> tuple[float, bool, tuple[str, ...]]:
    (ranked,) = [r for r in comparison.ranking if r.attempt_id == attempt_id]
    return ranked.quality, ranked.eligible, ranked.reasons


TOOK = ("diff of 10 lines", "cost $0.01", "took 10.0s")


@pytest.mark.parametrize(
    ("attempt", "eligible", "quality", "wins", "reasons"),
    [
        (att(1), True, 1.0, True, ("all 2 checks passed", *TOOK)),
        (att(1, checks="tests"), True, 1.0, True, ("1 check passed", *TOOK)),
        (att(1, checks=""), True, 0.8, True, ("no checks (unverified)", *TOOK)),
        (
            att(1, status=S.FAILED, error="checks failed: lint", failed="lint"),
            True,
            0.8,
            False,
            ("1 of 2 checks failed: lint", *TOOK),
        ),
        (
            att(1, status=S.FAILED, failed="tests,lint"),
            True,
            0.6,
            False,
            ("2 of 2 checks failed: tests, lint", *TOOK),
        ),
        (
            att(1, status=S.FAILED, error="checks failed", checks="tests", failed="tests"),
            True,
            0.6,
            False,
            ("1 of 1 check failed: tests", *TOOK),
        ),
        (
            att(1, status=S.FAILED, error="exit code 1"),
            False,
            0.0,
            False,
            ("agent failed: exit code 1", "all 2 checks passed", *TOOK),
        ),
        (att(1, status=S.TIMED_OUT), False, 0.0, False, ("timed out", "all 2 checks passed", *TOOK)),
        (att(1, status=S.CANCELLED), False, 0.0, False, ("cancelled", "all 2 checks passed", *TOOK)),
        (att(1, status=S.INTERRUPTED), False, 0.0, False, ("interrupted", "all 2 checks passed", *TOOK)),
        (att(1, lines=None), False, 0.0, False, ("no changes", "cost $0.01", "took 10.0s")),
        (att(1, status=S.QUEUED, start=None, end=None), False, 0.0, False, ("queued",)),
        (att(1, status=S.PREPARING, end=None), False, 0.0, False, ("still running",)),
        (att(1, status=S.RUNNING, end=None), False, 0.0, False, ("still running",)),
        (att(1, status=S.CHECKING, end=None), False, 0.0, False, ("still running",)),
    ],
    ids=[
        "succeeded",
        "one-check",
        "unverified",
        "checks-failed",
        "failed-without-error",
        "one-check-failed",
        "agent-crashed",
        "timed-out",
        "cancelled",
        "interrupted",
        "no-diff",
        "queued",
        "preparing",
        "running",
        "checking",
    ],
)
def test_single_attempt_eligibility_quality_and_reasons(
    attempt: Attempt, eligible: bool, quality: float, wins: bool, reasons: tuple[str, ...]
) -> None:
    result = compare([attempt])
    assert only(result, 1) == (quality, eligible, reasons)
    assert (result.winner is not None) == wins
    assert result.ranking[0].rank == 1


@pytest.mark.parametrize(
    ("attempts", "order"),
    [
        ([att(1, status=S.FAILED, error="checks failed", failed="lint", lines=1), att(2, lines=100)], [2, 1]),
        (
            [
                att(1, status=S.FAILED, error="checks failed", failed="tests,lint"),
                att(2, status=S.FAILED, error="checks failed", failed="lint", lines=50),
            ],
            [2, 1],
        ),
        ([att(1, checks="", lines=1), att(2, lines=50)], [2, 1]),
        (
            [
                att(1, status=S.FAILED, error="checks failed", failed="lint"),
                att(2, status=S.FAILED, error="x"),
            ],
            [2, 1],
        ),
        (
            [
                att(1, status=S.TIMED_OUT, failed="lint", lines=1),
                att(2, status=S.FAILED, error="checks failed", failed="lint", lines=50),
            ],
            [2, 1],
        ),
        ([att(1, lines=None), att(2, status=S.FAILED, error="checks failed", failed="tests,lint")], [2, 1]),
        ([att(1, lines=20), att(2, lines=10)], [2, 1]),
        ([att(1, cost=0.05), att(2, cost=0.02)], [2, 1]),
        ([att(1, cost=None), att(2, cost=9.0)], [2, 1]),
        ([att(1, end=30.0), att(2, end=20.0)], [2, 1]),
        ([att(1, start=None, end=None), att(2, end=500.0)], [2, 1]),
        ([att(2), att(1)], [1, 2]),
        (
            [
                att(5, status=S.QUEUED, start=None, end=None),
                att(4, status=S.RUNNING, end=None),
                att(3, status=S.CANCELLED),
                att(2, status=S.QUEUED, start=None, end=None),
                att(1, status=S.CHECKING, end=None),
            ],
            [3, 1, 4, 2, 5],
        ),
    ],
    ids=[
        "all-passed-beats-smaller-diff",
        "more-checks-passed",
        "verified-beats-unverified",
        "checks-before-clean-run",
        "clean-run-at-equal-checks",
        "no-diff-after-any-change",
        "smaller-diff",
        "lower-cost",
        "unknown-cost-last",
        "shorter-duration",
        "unknown-duration-last",
        "tie-by-id",
        "unfinished-last-running-before-queued",
    ],
)
def test_ranking_order(attempts: list[Attempt], order: list[int]) -> None:
    ranking = compare(attempts).ranking
    assert [r.attempt_id for r in ranking] == order
    assert [r.rank for r in ranking] == list(range(1, len(order) + 1))


@pytest.mark.parametrize(
    ("attempts", "qualities"),
    [
        ([att(1), att(2, lines=20, cost=0.02, end=20.0)], {1: 1.0, 2: 0.9}),
        ([att(1, cost=None), att(2, cost=0.02)], {1: 0.97, 2: 1.0}),
        ([att(1, cost=None), att(2, cost=None)], {1: 1.0, 2: 1.0}),
        ([att(1, cost=0.0), att(2, cost=0.01)], {1: 1.0, 2: 0.93}),
        ([att(1), att(2, status=S.FAILED, error="checks failed", failed="lint", lines=5)], {1: 0.97, 2: 0.8}),
        ([att(1), att(2, status=S.TIMED_OUT, lines=1, cost=0.001, end=1.0)], {1: 1.0, 2: 0.0}),
        ([att(1, start=None), att(2)], {1: 0.97, 2: 1.0}),
        ([att(1, lines=0), att(2)], {1: 1.0, 2: 0.93}),
        ([att(1), att(2, checks="")], {1: 1.0, 2: 0.8}),
        ([att(1, lines=1, end=1.0), att(2, lines=1000, cost=10.0, end=1000.0)], {1: 1.0, 2: 0.8}),
        ([att(1), att(2, status=S.RUNNING, end=None)], {1: 1.0, 2: 0.0}),
    ],
    ids=[
        "relative-efficiency",
        "unknown-cost-half",
        "all-costs-unknown",
        "free-run",
        "eligible-loser-sets-the-bar",
        "ineligible-does-not-set-the-bar",
        "unknown-duration-half",
        "zero-line-diff",
        "unverified-scores-half-on-checks",
        "all-passed-floor",
        "unfinished-scores-zero",
    ],
)
def test_quality(attempts: list[Attempt], qualities: dict[int, float]) -> None:
    assert {r.attempt_id: r.quality for r in compare(attempts).ranking} == qualities


@pytest.mark.parametrize(
    ("attempts", "attempt_id", "reasons"),
    [
        (
            [att(1, lines=12, cost=0.02, end=5.0), att(2, lines=40, cost=0.05, end=8.0)],
            1,
            ("all 2 checks passed", "smallest diff (12 lines)", "cheapest ($0.02)", "fastest (5.0s)"),
        ),
        (
            [att(1, lines=12, cost=0.02, end=5.0), att(2, lines=40, cost=0.05, end=8.0)],
            2,
            ("all 2 checks passed", "diff of 40 lines", "cost $0.05", "took 8.0s"),
        ),
        (
            [att(1, status=S.TIMED_OUT, lines=1, cost=0.001, end=1.0), att(2), att(3, lines=20, end=20.0)],
            1,
            ("timed out", "all 2 checks passed", "diff of 1 line", "cost $0.0010", "took 1.0s"),
        ),
        ([att(1, end=125.0)], 1, ("all 2 checks passed", *TOOK[:2], "took 2m05s")),
        ([att(1, cost=None)], 1, ("all 2 checks passed", "diff of 10 lines", "cost unknown", "took 10.0s")),
        ([att(1, status=S.CANCELLED, end=None)], 1, ("cancelled", "all 2 checks passed", *TOOK[:2])),
    ],
    ids=[
        "superlatives",
        "plain-facts",
        "ineligible-gets-no-superlative",
        "minutes",
        "cost-unknown",
        "no-duration",
    ],
)
def test_reasons(attempts: list[Attempt], attempt_id: int, reasons: tuple[str, ...]) -> None:
    assert only(compare(attempts), attempt_id)[2] == reasons


@pytest.mark.parametrize(
    ("attempts", "verdict", "winner"),
    [
        (
            [att(1, "claude", lines=12, cost=0.02)],
            "claude wins: all checks passed with a diff of 12 lines at $0.02.",
            1,
        ),
        (
            [att(1, "claude", lines=12, cost=0.02), att(2, "codex", lines=40)],
            "claude wins: all checks passed with the smallest diff (12 lines) at $0.02.",
            1,
        ),
        (
            [att(1, "claude", cost=0.05), att(2, "codex", cost=0.02)],
            "codex wins: all checks passed with an equal diff and the lowest cost at $0.02.",
            2,
        ),
        (
            [att(1, "claude", cost=None), att(2, "codex", cost=0.5)],
            "codex wins: all checks passed with an equal diff and the lowest cost at $0.50.",
            2,
        ),
        (
            [att(1, "claude", end=30.0), att(2, "codex", end=20.0)],
            "codex wins: all checks passed with an equal diff and cost, fastest (20.0s) at $0.01.",
            2,
        ),
        (
            [att(1, "claude"), att(2, "codex")],
            "claude wins: all checks passed (tied with codex; created first) at $0.01.",
            1,
        ),
        (
            [att(1, "claude", start=None, end=None), att(2, "codex", start=None, end=None)],
            "claude wins: all checks passed (tied with codex; created first) at $0.01.",
            1,
        ),
        (
            [att(1, "claude", checks="", lines=1), att(2, "codex", lines=50)],
            "codex wins: all checks passed (the others were unverified) at $0.01.",
            2,
        ),
        (
            [att(1, "claude", S.FAILED, error="checks failed", failed="lint"), att(2, "codex", lines=30)],
            "codex wins: the only attempt that passed all checks, with a diff of 30 lines at $0.01.",
            2,
        ),
        (
            [att(1, "claude", checks="", lines=1), att(2, "codex", S.TIMED_OUT)],
            "claude wins: the only clean change (unverified), with a diff of 1 line at $0.01.",
            1,
        ),
        (
            [att(1, "claude", checks="", lines=5), att(2, "codex", checks="", lines=9)],
            "claude wins: no checks configured (unverified) with the smallest diff (5 lines) at $0.01.",
            1,
        ),
        (
            [att(1, "claude", cost=None)],
            "claude wins: all checks passed with a diff of 10 lines, cost unknown.",
            1,
        ),
        (
            [att(1, "claude", cost=0.0042)],
            "claude wins: all checks passed with a diff of 10 lines at $0.0042.",
            1,
        ),
        ([att(1, "claude", cost=0.0)], "claude wins: all checks passed with a diff of 10 lines at $0.00.", 1),
        ([], "No winner: there are no attempts.", None),
        (
            [att(1, status=S.FAILED, error="checks failed", failed="tests"), att(2, status=S.TIMED_OUT)],
            "No winner: no attempt passed its checks.",
            None,
        ),
        (
            [att(1, lines=None), att(2, status=S.FAILED, error="exit code 2")],
            "No winner: no attempt ran cleanly and produced changes.",
            None,
        ),
        (
            [
                att(1, status=S.RUNNING, end=None),
                att(2, status=S.PREPARING, end=None),
                att(3, status=S.FAILED, error="boom"),
            ],
            "No winner yet: 2 attempts still running.",
            None,
        ),
        ([att(1, status=S.QUEUED, start=None, end=None)], "No winner yet: 1 attempt queued.", None),
        (
            [
                att(1, "claude"),
                att(2, "codex", S.RUNNING, end=None),
                att(3, "gemini", S.QUEUED, start=None, end=None),
            ],
            "No winner yet: 1 attempt still running, 1 queued; claude leads so far.",
            None,
        ),
    ],
    ids=[
        "single",
        "smallest-diff",
        "lowest-cost",
        "known-cost",
        "fastest",
        "tie",
        "tie-without-durations",
        "others-unverified",
        "only-one-passed",
        "only-clean-change-unverified",
        "unverified-contest",
        "cost-unknown",
        "sub-cent",
        "free",
        "no-attempts",
        "no-checks-passed",
        "nothing-clean",
        "running",
        "queued",
        "running-and-queued-with-leader",
    ],
)
def test_verdict_and_winner(attempts: list[Attempt], verdict: str, winner: int | None) -> None:
    result = compare(attempts)
    assert result.verdict == verdict
    assert (result.winner.attempt_id if result.winner else None) == winner
    if result.winner:
        assert result.winner == result.ranking[0]
        assert result.winner.eligible and result.winner.quality >= 0.6


@pytest.mark.parametrize(
    ("attempts", "wall", "total", "speedup"),
    [
        (
            [att(1, start=100.0, end=105.0), att(2, start=101.0, end=104.0), att(3, start=100.5, end=104.5)],
            5.0,
            12.0,
            2.4,
        ),
        ([att(1, start=0.0, end=10.0), att(2, start=10.0, end=20.0)], 20.0, 20.0, 1.0),
        ([att(1, start=0.0, end=10.0), att(2, status=S.RUNNING, start=0.0, end=None)], 10.0, 10.0, 1.0),
        ([att(1, status=S.QUEUED, start=None, end=None)], None, 0.0, None),
        ([att(1, start=5.0, end=5.0)], 0.0, 0.0, None),
    ],
    ids=["parallel", "sequential", "unfinished-excluded", "nothing-timed", "zero-wall-time"],
)
def test_times_and_speedup(attempts: list[Attempt], wall: float | None, total: float, speedup: float | None) -> None:
    result = compare(attempts)
    assert result.wall_time == pytest.approx(wall)
    assert result.sum_time == pytest.approx(total)
    assert result.speedup == pytest.approx(speedup)


@pytest.mark.parametrize(
    ("attempts", "total", "complete"),
    [
        ([att(1, cost=0.01), att(2, cost=0.02)], 0.03, True),
        ([att(1, cost=None), att(2, cost=0.02)], 0.02, False),
        ([att(1, cost=None)], None, False),
        ([att(1, cost=0.01), att(2, status=S.RUNNING, end=None, cost=None)], 0.01, True),
        ([att(1, status=S.RUNNING, end=None, cost=0.03)], 0.03, True),
        ([], None, True),
    ],
    ids=[
        "all-known",
        "one-unknown",
        "none-known",
        "running-unknown-ignored",
        "running-partial-cost",
        "empty",
    ],
)
def test_costs(attempts: list[Attempt], total: float | None, complete: bool) -> None:
    result = compare(attempts)
    assert result.total_cost == pytest.approx(total)
    assert result.cost_complete is complete


@pytest.mark.parametrize(
    ("attempts", "expected"),
    [
        ([], 0.0),
        ([att(1, status=S.RUNNING, end=None)], 0.0),
        ([att(1, status=S.TIMED_OUT)], 0.0),
        ([att(1, status=S.FAILED, error="checks failed", failed="lint")], 0.8),
        ([att(1, status=S.FAILED, error="checks failed", failed="lint"), att(2, lines=20)], 0.97),
    ],
)
def test_best_quality(attempts: list[Attempt], expected: float) -> None:
    assert best_quality(attempts) == expected


@pytest.mark.parametrize(
    ("attempts", "message"),
    [
        ([att(1, task_id=1), att(2, task_id=2)], "attempts belong to different tasks: 1, 2"),
        ([att(1), att(1)], "attempt id 1 appears more than once"),
        ([att(1, start=10.0, end=5.0)], "attempt 1 finished before it started"),
        ([att(1, cost=-0.5)], "attempt 1 has a negative cost: -0.5"),
    ],
)
def test_bad_input_raises(attempts: list[Attempt], message: str) -> None:
    with pytest.raises(ScoringError, match=f"^{message}$"):
        compare(attempts)
    with pytest.raises(ValueError, match=message):
        best_quality(attempts)
