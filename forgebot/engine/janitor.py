"""Scheduled housekeeping that needs no GitHub: the stuck-attempt reaper, and the pure rules that it and the
branch sweep (forgebot/github/sweeps.py) follow. Jobs are wired to a schedule in forgebot/scheduler.py."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from forgebot.core.models import ACTIVE, TRANSITIONS, Attempt, AttemptStatus
from forgebot.core.prompt import format_duration
from forgebot.engine.engine import Engine, owner_alive
from forgebot.engine.processes import pid_alive


@dataclass(frozen=True)
class Verdict:
    status: AttemptStatus  # TIMED_OUT or INTERRUPTED
    reason: str


def overdue_status(current: AttemptStatus) -> AttemptStatus:
    """Timed out where the state machine allows it (running, checking); interrupted otherwise (preparing)."""
    return AttemptStatus.TIMED_OUT if AttemptStatus.TIMED_OUT in TRANSITIONS[current] else AttemptStatus.INTERRUPTED


def judge(
    attempt: Attempt,
    *,
    now: float,
    timeout: float,
    slack: float,
    runs_here: bool,
    owner_alive: bool,
    pid_gone_since: float | None,
) -> Verdict | None:
    """What the reaper does with one attempt. Pure: the caller found out who runs it and whether its process is
    there. `pid_gone_since`: when the reaper first saw its agent process gone (None: there, or unknown)."""
    if not attempt.status.active:
        return None
    if attempt.started_at is not None and now - attempt.started_at > timeout + slack:
        took = format_duration(now - attempt.started_at)
        reason = f"timed out: still {attempt.status.value} {took} after it started (limit {format_duration(timeout)})"
        return Verdict(overdue_status(attempt.status), reason)
    if runs_here:
        return None  # our own runner watches its process; only the clock above can overrule it
    if not owner_alive:
        gone = attempt.owner or "unknown"
        return Verdict(AttemptStatus.INTERRUPTED, f"interrupted: the forgebot process that ran it ({gone}) is gone")
    if pid_gone_since is not None and now - pid_gone_since >= slack:
        return Verdict(AttemptStatus.INTERRUPTED, f"interrupted: its process {attempt.pid} is gone")
    return None


def on_this_host(owner: str | None) -> bool:
    """Attempts run by a forgebot on another host are that host's to reap (its pids mean nothing here)."""
    return not owner or ":" not in owner or owner.rpartition(":")[0] == socket.gethostname()


def doomed_branches(attempts: Sequence[Attempt], *, merged: bool, head: str | None) -> list[str]:
    """The task's branches to delete once its pull request is merged (every forge/ branch it pushed) or closed
    unmerged (all but the PR's own head, which someone may reopen). Never a branch that is not forge/, nor one an
    attempt never pushed (no commit: cancelled while queued, or no changes): a branch of that name on the remote
    is not forgebot's work from this task (a reset store numbers tasks from 1 again)."""
    return sorted(
        {
            a.branch
            for a in attempts
            if a.commit_sha and a.branch.startswith("forge/") and (merged or a.branch != head)
        }
    )


@dataclass(frozen=True)
class ReapReport:
    checked: int
    timed_out: tuple[int, ...]  # attempt ids
    interrupted: tuple[int, ...]
    dry_run: bool


class Reaper:
    """Finishes attempts past their time or whose process is gone, through the engine (events are published).
    Keeps, between runs, when it first saw each attempt's agent process gone: a process that has just exited is
    normal while its runner records the result, so only one gone for `slack` seconds counts."""

    def __init__(self, engine: Engine, *, slack: float) -> None:
        self.engine = engine
        self.slack = slack
        self._gone: dict[int, tuple[int, AttemptStatus, float]] = {}  # attempt -> (pid, status, first seen gone)

    async def run(self, *, dry_run: bool = False) -> ReapReport:
        engine = self.engine
        stored = await asyncio.to_thread(engine.store.list_attempts, statuses=ACTIVE)
        active = [a for a in stored if on_this_host(a.owner)]
        now = engine.clock()
        verdicts = []
        for attempt in active:
            here = engine.runs_here(attempt.id)
            alive = here or await asyncio.to_thread(owner_alive, attempt.owner)
            gone_since = None if here else await self._pid_gone_since(attempt, now)
            verdict = judge(
                attempt,
                now=now,
                timeout=engine.settings.attempt_timeout,
                slack=self.slack,
                runs_here=here,
                owner_alive=alive,
                pid_gone_since=gone_since,
            )
            if verdict is not None:
                verdicts.append((attempt, verdict))
        self._forget({a.id for a in active})
        timed_out: list[int] = []
        interrupted: list[int] = []
        for attempt, verdict in verdicts:
            if not dry_run and await engine.finish_stuck(attempt, verdict.status, verdict.reason) is None:
                continue  # it finished by itself meanwhile
            (timed_out if verdict.status is AttemptStatus.TIMED_OUT else interrupted).append(attempt.id)
            self._gone.pop(attempt.id, None)
        return ReapReport(len(active), tuple(timed_out), tuple(interrupted), dry_run)

    async def _pid_gone_since(self, attempt: Attempt, now: float) -> float | None:
        if not attempt.pid or await asyncio.to_thread(pid_alive, attempt.pid):
            self._gone.pop(attempt.id, None)
            return None
        seen = self._gone.get(attempt.id)
        if seen is None or seen[:2] != (attempt.pid, attempt.status):
            seen = (attempt.pid, attempt.status, now)
            self._gone[attempt.id] = seen
        return seen[2]

    def _forget(self, active: set[int]) -> None:
        for attempt_id in set(self._gone) - active:
            del self._gone[attempt_id]
