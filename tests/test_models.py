"""The attempt state machine and the small value types in forgebot.core.models."""

from __future__ import annotations

import itertools

import pytest

from forgebot.core.models import (
    AgentProfile,
    Attempt,
    AttemptStatus,
    DiffStats,
    IllegalTransition,
    Price,
    TaskStatus,
    check_transition,
    task_status,
)

S = AttemptStatus

# Written out by hand rather than derived from TRANSITIONS, so a change to the machine has to change this too.
LEGAL: dict[AttemptStatus, set[AttemptStatus]] = {
    S.QUEUED: {S.PREPARING, S.CANCELLED, S.INTERRUPTED},
    S.PREPARING: {S.RUNNING, S.FAILED, S.CANCELLED, S.INTERRUPTED},
    S.RUNNING: {S.CHECKING, S.FAILED, S.TIMED_OUT, S.CANCELLED, S.INTERRUPTED},
    S.CHECKING: {S.SUCCEEDED, S.FAILED, S.TIMED_OUT, S.CANCELLED, S.INTERRUPTED},
    S.SUCCEEDED: {S.QUEUED},  # a follow-up runs again in the same session
    S.FAILED: {S.QUEUED},
    S.TIMED_OUT: {S.QUEUED},
    S.CANCELLED: {S.QUEUED},
    S.INTERRUPTED: {S.QUEUED},
}
ALL_PAIRS = list(itertools.product(AttemptStatus, AttemptStatus))


def test_expected_table_covers_every_status() -> None:
    assert set(LEGAL) == set(AttemptStatus)


@pytest.mark.parametrize(("current", "target"), [p for p in ALL_PAIRS if p[1] in LEGAL[p[0]]])
def test_legal_transition_returns_target(current: AttemptStatus, target: AttemptStatus) -> None:
    assert check_transition(current, target) is target


@pytest.mark.parametrize(("current", "target"), [p for p in ALL_PAIRS if p[1] not in LEGAL[p[0]]])
def test_illegal_transition_raises_naming_both(current: AttemptStatus, target: AttemptStatus) -> None:
    with pytest.raises(IllegalTransition) as info:
        check_transition(current, target)
    assert str(info.value) == f"attempt cannot go from {current} to {target}"
    assert (info.value.current, info.value.target) == (current, target)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("status", "terminal", "active"),
    [
        (S.QUEUED, False, False),
        (S.PREPARING, False, True),
        (S.RUNNING, False, True),
        (S.CHECKING, False, True),
        (S.SUCCEEDED, True, False),
        (S.FAILED, True, False),
        (S.TIMED_OUT, True, False),
        (S.CANCELLED, True, False),
        (S.INTERRUPTED, True, False),
    ],
)
def test_terminal_and_active_flags(status: AttemptStatus, terminal: bool, active: bool) -> None:
    assert (status.terminal, status.active) == (terminal, active)


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], TaskStatus.EMPTY),
        ([S.QUEUED], TaskStatus.QUEUED),
        ([S.QUEUED, S.QUEUED], TaskStatus.QUEUED),
        ([S.QUEUED, S.SUCCEEDED], TaskStatus.RUNNING),
        ([S.FAILED, S.QUEUED], TaskStatus.RUNNING),
        ([S.SUCCEEDED, S.PREPARING], TaskStatus.RUNNING),
        ([S.FAILED, S.RUNNING], TaskStatus.RUNNING),
        ([S.CHECKING, S.QUEUED], TaskStatus.RUNNING),
        ([S.FAILED, S.SUCCEEDED, S.TIMED_OUT], TaskStatus.SUCCEEDED),
        ([S.SUCCEEDED, S.INTERRUPTED], TaskStatus.SUCCEEDED),
        ([S.FAILED, S.INTERRUPTED], TaskStatus.INTERRUPTED),
        ([S.CANCELLED, S.INTERRUPTED], TaskStatus.INTERRUPTED),
        ([S.CANCELLED, S.CANCELLED], TaskStatus.CANCELLED),
        ([S.CANCELLED, S.FAILED], TaskStatus.FAILED),
        ([S.TIMED_OUT], TaskStatus.FAILED),
        ([S.FAILED, S.FAILED], TaskStatus.FAILED),
    ],
)
def test_task_status_derivation(statuses: list[AttemptStatus], expected: TaskStatus) -> None:
    assert task_status(statuses) is expected


@pytest.mark.parametrize(
    ("price", "tokens_in", "tokens_out", "expected"),
    [
        (Price(3.0, 15.0), 1_000_000, 1_000_000, 18.0),
        (Price(3.0, 15.0), 2_000, 500, 0.0135),
        (Price(0.0, 0.0), 10_000, 10_000, 0.0),
        (Price(1.0, 2.0), 0, 0, 0.0),
    ],
)
def test_price_cost(price: Price, tokens_in: int, tokens_out: int, expected: float) -> None:
    assert price.cost(tokens_in, tokens_out) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("diff", "lines", "empty"),
    [
        (DiffStats(), 0, True),
        (DiffStats(files=1, insertions=0, deletions=0), 0, False),
        (DiffStats(files=2, insertions=10, deletions=3), 13, False),
        (DiffStats(files=0, insertions=4, deletions=1), 5, True),
    ],
)
def test_diff_stats(diff: DiffStats, lines: int, empty: bool) -> None:
    assert (diff.lines, diff.empty) == (lines, empty)


def _attempt(started_at: float | None, finished_at: float | None) -> Attempt:
    return Attempt(
        id=1,
        task_id=1,
        profile=AgentProfile(name="claude", executor="command"),
        branch="forgebot/1/claude",
        worktree="/tmp/wt",
        status=S.RUNNING,
        created_at=0.0,
        started_at=started_at,
        finished_at=finished_at,
    )


@pytest.mark.parametrize(
    ("started_at", "finished_at", "now", "expected"),
    [
        (None, None, 100.0, None),
        (10.0, None, 25.0, 15.0),
        (10.0, 40.0, 1000.0, 30.0),
    ],
)
def test_attempt_elapsed(
    started_at: float | None, finished_at: float | None, now: float, expected: float | None
) -> None:
    assert _attempt(started_at, finished_at).elapsed(now) == expected
