"""Domain records and the attempt state machine. Pure: no IO, no clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class AttemptStatus(StrEnum):
    QUEUED = "queued"
    PREPARING = "preparing"
    RUNNING = "running"
    CHECKING = "checking"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL

    @property
    def active(self) -> bool:
        """Holds a worker slot (counts against the limits)."""
        return self in ACTIVE


ACTIVE = frozenset({AttemptStatus.PREPARING, AttemptStatus.RUNNING, AttemptStatus.CHECKING})
TERMINAL = frozenset(
    {
        AttemptStatus.SUCCEEDED,
        AttemptStatus.FAILED,
        AttemptStatus.TIMED_OUT,
        AttemptStatus.CANCELLED,
        AttemptStatus.INTERRUPTED,
    }
)
# A finished attempt that did not succeed may be queued again (retry).
RETRYABLE = TERMINAL - {AttemptStatus.SUCCEEDED}
_STOPPED = {AttemptStatus.CANCELLED, AttemptStatus.INTERRUPTED}

TRANSITIONS: dict[AttemptStatus, frozenset[AttemptStatus]] = {
    AttemptStatus.QUEUED: frozenset({AttemptStatus.PREPARING, *_STOPPED}),
    AttemptStatus.PREPARING: frozenset({AttemptStatus.RUNNING, AttemptStatus.FAILED, *_STOPPED}),
    AttemptStatus.RUNNING: frozenset(
        {AttemptStatus.CHECKING, AttemptStatus.FAILED, AttemptStatus.TIMED_OUT, *_STOPPED}
    ),
    AttemptStatus.CHECKING: frozenset(
        {AttemptStatus.SUCCEEDED, AttemptStatus.FAILED, AttemptStatus.TIMED_OUT, *_STOPPED}
    ),
    # Retry (after a failure) and follow-up (after anything) both queue the attempt again.
    **{status: frozenset({AttemptStatus.QUEUED}) for status in TERMINAL},
}


class IllegalTransition(ValueError):
    def __init__(self, current: AttemptStatus, target: AttemptStatus) -> None:
        super().__init__(f"attempt cannot go from {current} to {target}")
        self.current = current
        self.target = target


def check_transition(current: AttemptStatus, target: AttemptStatus) -> AttemptStatus:
    """The one place that says which status changes are legal; returns `target` or raises."""
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(current, target)
    return target


class TaskStatus(StrEnum):
    EMPTY = "empty"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


def task_status(statuses: list[AttemptStatus]) -> TaskStatus:
    """A task's status is derived from its attempts, never stored."""
    if not statuses:
        return TaskStatus.EMPTY
    if any(s.active for s in statuses):
        return TaskStatus.RUNNING
    if AttemptStatus.QUEUED in statuses:
        return TaskStatus.RUNNING if any(s.terminal for s in statuses) else TaskStatus.QUEUED
    if AttemptStatus.SUCCEEDED in statuses:
        return TaskStatus.SUCCEEDED
    if AttemptStatus.INTERRUPTED in statuses:
        return TaskStatus.INTERRUPTED
    if all(s is AttemptStatus.CANCELLED for s in statuses):
        return TaskStatus.CANCELLED
    return TaskStatus.FAILED


class Strategy(StrEnum):
    PARALLEL = "parallel"
    CASCADE = "cascade"


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens."""

    input_per_mtok: float
    output_per_mtok: float

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        return (tokens_in * self.input_per_mtok + tokens_out * self.output_per_mtok) / 1_000_000


@dataclass(frozen=True)
class AgentProfile:
    """A named way of running one agent. `env` values may hold `${NAME}` references that are
    resolved from forgebot's own environment only when the process starts, so secrets are never stored."""

    name: str
    executor: str
    command: tuple[str, ...] = ()
    model: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    persona: str = ""
    price: Price | None = None
    tier: int = 1
    base_url: str | None = None  # where the agent's LLM API is (a proxy, a gateway, a test server)


@dataclass(frozen=True)
class CheckSpec:
    name: str
    run: tuple[str, ...]
    timeout: float = 600.0


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    exit_code: int | None
    duration: float
    output_tail: str = ""
    timed_out: bool = False


@dataclass(frozen=True)
class DiffStats:
    files: int = 0
    insertions: int = 0
    deletions: int = 0

    @property
    def lines(self) -> int:
        return self.insertions + self.deletions

    @property
    def empty(self) -> bool:
        return self.files == 0


@dataclass(frozen=True)
class Usage:
    tokens_in: int | None = None
    tokens_out: int | None = None
    cache_read: int | None = None
    cache_write: int | None = None
    cost_usd: float | None = None
    turns: int | None = None


@dataclass
class Task:
    id: int
    title: str
    description: str
    repo: str
    base_branch: str
    base_sha: str
    strategy: Strategy
    quality_threshold: float
    checks: tuple[CheckSpec, ...]
    created_at: float
    source: str = "cli"
    external_ref: str | None = None


@dataclass
class Attempt:
    id: int
    task_id: int
    profile: AgentProfile
    branch: str
    worktree: str
    status: AttemptStatus
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    error: str | None = None
    session_id: str | None = None
    final_message: str | None = None
    diff: DiffStats = field(default_factory=DiffStats)
    checks: tuple[CheckResult, ...] = ()
    usage: Usage = field(default_factory=Usage)
    commit_sha: str | None = None
    log_path: str | None = None
    pid: int | None = None
    owner: str | None = None
    cancel_requested: bool = False
    progress: str = ""
    followup: str | None = None  # a follow-up prompt queued to run in this attempt's session

    @property
    def agent(self) -> str:
        return self.profile.name

    @property
    def tier(self) -> int:
        return self.profile.tier

    def elapsed(self, now: float) -> float | None:
        if self.started_at is None:
            return None
        end = now if self.finished_at is None else self.finished_at
        return end - self.started_at

    @property
    def checks_passed(self) -> bool:
        return all(c.passed for c in self.checks)
