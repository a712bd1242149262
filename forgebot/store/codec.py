"""Conversion between domain records and table rows (JSON for nested values, plain columns for sums)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from forgebot.core.models import (
    AgentProfile,
    Attempt,
    AttemptStatus,
    CheckResult,
    CheckSpec,
    DiffStats,
    Price,
    Strategy,
    Task,
    Usage,
)

# Attempt fields that may change after creation; status only through a checked transition.
UPDATABLE_FIELDS = frozenset(
    {
        "worktree",
        "started_at",
        "finished_at",
        "exit_code",
        "error",
        "session_id",
        "final_message",
        "diff",
        "checks",
        "usage",
        "commit_sha",
        "log_path",
        "pid",
        "owner",
        "cancel_requested",
        "followup",
        "progress",
    }
)
_USAGE_COLUMNS = ("tokens_in", "tokens_out", "cache_read", "cache_write", "cost_usd", "turns")


def _require(value: object, cls: type, what: str) -> None:
    if not isinstance(value, cls):
        raise TypeError(f"{what} must be {cls.__name__}, got {type(value).__name__}")


def dump_profile(profile: AgentProfile) -> str:
    _require(profile, AgentProfile, "profile")
    return json.dumps(asdict(profile), sort_keys=True)


def load_profile(text: str) -> AgentProfile:
    data = json.loads(text)
    price = data["price"]
    return AgentProfile(
        **{
            **data,
            "command": tuple(data["command"]),
            "args": tuple(data["args"]),
            "price": None if price is None else Price(**price),
        }
    )


def dump_specs(specs: Sequence[CheckSpec]) -> str:
    for spec in specs:
        _require(spec, CheckSpec, "each task check")
    return json.dumps([asdict(spec) for spec in specs])


def load_specs(text: str) -> tuple[CheckSpec, ...]:
    return tuple(CheckSpec(**{**item, "run": tuple(item["run"])}) for item in json.loads(text))


def dump_results(results: Sequence[CheckResult]) -> str:
    for result in results:
        _require(result, CheckResult, "each attempt check")
    return json.dumps([asdict(result) for result in results])


def load_results(text: str) -> tuple[CheckResult, ...]:
    return tuple(CheckResult(**item) for item in json.loads(text))


def attempt_columns(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Column values for an update of attempt `fields`; rejects status and unknown names."""
    if "status" in fields:
        raise ValueError("attempt status changes only through transition()")
    unknown = sorted(set(fields) - UPDATABLE_FIELDS)
    if unknown:
        raise ValueError(f"not updatable attempt field(s): {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, value in fields.items():
        if name == "diff":
            _require(value, DiffStats, "diff")
            values.update(files=value.files, insertions=value.insertions, deletions=value.deletions)
        elif name == "usage":
            _require(value, Usage, "usage")
            values.update({column: getattr(value, column) for column in _USAGE_COLUMNS})
        elif name == "checks":
            values["checks"] = dump_results(tuple(value))
        else:
            values[name] = value
    return values


def task_from_row(row: Any) -> Task:
    return Task(
        id=row.id,
        title=row.title,
        description=row.description,
        repo=row.repo,
        base_branch=row.base_branch,
        base_sha=row.base_sha,
        strategy=Strategy(row.strategy),
        quality_threshold=row.quality_threshold,
        checks=load_specs(row.checks),
        created_at=row.created_at,
        source=row.source,
        external_ref=row.external_ref,
    )


def attempt_from_row(row: Any) -> Attempt:
    return Attempt(
        id=row.id,
        task_id=row.task_id,
        profile=load_profile(row.profile),
        branch=row.branch,
        worktree=row.worktree,
        status=AttemptStatus(row.status),
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        exit_code=row.exit_code,
        error=row.error,
        session_id=row.session_id,
        final_message=row.final_message,
        diff=DiffStats(files=row.files, insertions=row.insertions, deletions=row.deletions),
        checks=load_results(row.checks),
        usage=Usage(**{column: getattr(row, column) for column in _USAGE_COLUMNS}),
        commit_sha=row.commit_sha,
        log_path=row.log_path,
        pid=row.pid,
        owner=row.owner,
        cancel_requested=bool(row.cancel_requested),
        progress=row.progress,
        followup=row.followup,
    )
