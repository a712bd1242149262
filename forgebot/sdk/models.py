"""Typed results of the SDK, built from the API's JSON (see forgebot/api/openapi.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

TERMINAL = frozenset({"succeeded", "failed", "timed_out", "cancelled", "interrupted"})
TASK_DONE = frozenset({"empty", "succeeded", "failed", "cancelled", "interrupted"})

Json = dict[str, Any]


def known(cls: type, data: Json) -> Json:
    """The keys of `data` that `cls` has: a newer server may send more, and an older SDK must not break."""
    names = {f.name for f in fields(cls)}
    return {key: value for key, value in data.items() if key in names}


@dataclass(frozen=True)
class Diff:
    files: int
    insertions: int
    deletions: int


@dataclass(frozen=True)
class Usage:
    tokens_in: int | None
    tokens_out: int | None
    cache_read: int | None
    cache_write: int | None
    cost_usd: float | None
    turns: int | None


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    exit_code: int | None
    duration: float
    timed_out: bool
    output_tail: str


@dataclass(frozen=True)
class Attempt:
    id: int
    task_id: int
    agent: str
    executor: str
    model: str | None
    tier: int
    branch: str
    worktree: str
    status: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    elapsed: float | None
    exit_code: int | None
    error: str | None
    progress: str
    session_id: str | None
    final_message: str | None
    diff: Diff
    checks: tuple[CheckResult, ...]
    usage: Usage
    commit_sha: str | None
    followup_pending: bool
    log_tail: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    @classmethod
    def from_json(cls, data: Json) -> Attempt:
        values = {**known(cls, data), "diff": Diff(**data["diff"]), "usage": Usage(**data["usage"])}
        values["checks"] = tuple(CheckResult(**known(CheckResult, c)) for c in data["checks"])
        return cls(**values)


@dataclass(frozen=True)
class Check:
    name: str
    run: tuple[str, ...]
    timeout: float


@dataclass(frozen=True)
class Task:
    id: int
    title: str
    description: str
    repo: str
    base_branch: str
    base_sha: str
    strategy: str
    quality_threshold: float
    checks: tuple[Check, ...]
    created_at: float
    source: str
    external_ref: str | None
    status: str  # derived from the attempts: empty, queued, running, succeeded, failed, cancelled, interrupted
    attempts: tuple[Attempt, ...]

    @property
    def finished(self) -> bool:
        return self.status in TASK_DONE

    @classmethod
    def from_json(cls, data: Json) -> Task:
        return cls(
            **{
                **known(cls, data),
                "checks": tuple(Check(c["name"], tuple(c["run"]), c["timeout"]) for c in data["checks"]),
                "attempts": tuple(Attempt.from_json(a) for a in data["attempts"]),
            }
        )


@dataclass(frozen=True)
class Ranked:
    attempt_id: int
    agent: str
    rank: int
    quality: float
    eligible: bool
    reasons: tuple[str, ...]

    @classmethod
    def from_json(cls, data: Json) -> Ranked:
        return cls(**{**known(cls, data), "reasons": tuple(data["reasons"])})


@dataclass(frozen=True)
class Comparison:
    task_id: int
    ranking: tuple[Ranked, ...]
    winner: Ranked | None
    verdict: str
    wall_time: float | None
    sum_time: float
    speedup: float | None
    total_cost: float | None
    cost_complete: bool

    @classmethod
    def from_json(cls, data: Json) -> Comparison:
        winner = data["winner"]
        return cls(
            **{
                **known(cls, data),
                "ranking": tuple(Ranked.from_json(r) for r in data["ranking"]),
                "winner": Ranked.from_json(winner) if winner else None,
            }
        )


@dataclass(frozen=True)
class Progress:
    tasks: int
    total: int
    queued: int
    in_progress: int
    completed: int
    succeeded: int
    failed: int
    percentage: float


@dataclass(frozen=True)
class Worktree:
    attempt_id: int
    task_id: int
    agent: str
    status: str
    path: str
    branch: str
    bytes: int
    finished_at: float | None


@dataclass(frozen=True)
class TemplateParam:
    name: str
    required: bool
    default: str | None
    description: str


@dataclass(frozen=True)
class Template:
    name: str
    description: str
    title: str
    agents: tuple[str, ...]
    params: tuple[TemplateParam, ...]
    usage: str
    source: str

    @classmethod
    def from_json(cls, data: Json) -> Template:
        params = tuple(TemplateParam(**known(TemplateParam, p)) for p in data["params"])
        return cls(**{**known(cls, data), "agents": tuple(data["agents"]), "params": params})


@dataclass(frozen=True)
class CleanupReport:
    removed: tuple[str, ...]
    kept: int
    bytes_before: int
    bytes_after: int
    dry_run: bool

    @classmethod
    def from_json(cls, data: Json) -> CleanupReport:
        return cls(**{**known(cls, data), "removed": tuple(data["removed"])})


@dataclass(frozen=True)
class MergeResult:
    base_branch: str
    old_sha: str
    new_sha: str
    rebased: bool


@dataclass(frozen=True)
class Event:
    id: int | None
    kind: str  # task_created, attempt_added, attempt_status, attempt_progress, task_finished
    task_id: int
    attempt: Attempt | None

    @classmethod
    def from_json(cls, event_id: int | None, data: Json) -> Event:
        attempt = data.get("attempt")
        return cls(event_id, data["kind"], data["task_id"], Attempt.from_json(attempt) if attempt else None)
