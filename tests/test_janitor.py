"""The jobs that need no GitHub — worktree cleanup by TTL and the stuck-attempt reaper — on real repositories,
real agent processes and a real SQLite store; and the pure rules behind them."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from forgebot.config import Schedule
from forgebot.core.models import AgentProfile, Attempt, AttemptStatus
from forgebot.engine.engine import Engine, owner_id
from forgebot.engine.events import EngineEvent, EventKind
from forgebot.engine.janitor import Reaper, doomed_branches, judge, overdue_status
from forgebot.engine.runner import EngineSettings
from forgebot.engine.workspaces import Workspaces
from forgebot.scheduler import Jobs
from forgebot.store import open_store
from tests.support import agent, make_repo, process_gone

S = AttemptStatus
HOUR = 3600.0


class Clock:
    """The engine's clock, moved by the test (the runner stamps started_at and finished_at with it)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def engine(tmp_path: Path, clock: Clock) -> AsyncIterator[Engine]:
    store = open_store(f"sqlite:///{tmp_path / 'state' / 'forgebot.db'}")
    settings = EngineSettings(kill_grace=0.5, cancel_poll=0.2, attempt_timeout=600)
    engine = Engine(store, Workspaces(), settings=settings, environ={"PATH": os.environ["PATH"]}, clock=clock)
    await engine.start()
    yield engine
    await engine.shutdown(grace=0)
    store.close()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


async def _finished_task(engine: Engine, repo: Path, name: str) -> list[Attempt]:
    task = await engine.submit(title=name, description="", repo=str(repo), profiles=[agent(name, "write", "f", name)])
    return await asyncio.wait_for(engine.wait_task(task.id), 30)


async def _until(predicate_status: S, engine: Engine, attempt_id: int) -> Attempt:
    for _ in range(400):
        attempt = await engine.attempt(attempt_id)
        if attempt.status is predicate_status:
            return attempt
        await asyncio.sleep(0.05)
    raise AssertionError(f"attempt {attempt_id} never became {predicate_status}")


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


async def _stuck(engine: Engine, repo: Path, *, status: S, owner: str, pid: int | None, started_ago: float) -> Attempt:
    """An attempt left active in the store, as a crashed or hung forgebot process leaves it."""
    task = await engine.submit(
        title="Stuck", description="", repo=str(repo), profiles=[agent("stuck", "hang")], start=False
    )
    (attempt,) = await engine.attempts(task.id)
    store = engine.store
    started = engine.clock() - started_ago
    await asyncio.to_thread(store.transition, attempt.id, S.PREPARING, started_at=started, owner=owner)
    if status is not S.PREPARING:
        await asyncio.to_thread(store.transition, attempt.id, S.RUNNING)
    return await asyncio.to_thread(store.update_attempt, attempt.id, pid=pid)


# ---- worktree cleanup


async def test_cleanup_respects_the_ttl_and_never_touches_a_running_task(
    engine: Engine, repo: Path, clock: Clock
) -> None:
    (old,) = await _finished_task(engine, repo, "old")
    clock.offset = 23 * HOUR
    (recent,) = await _finished_task(engine, repo, "recent")
    # A task still running: one attempt done long ago, one hanging. Neither worktree may go.
    profiles = [agent("quick", "write", "q", "q"), agent("hang", "hang")]
    busy = await engine.submit(title="Busy", description="", repo=str(repo), profiles=profiles)
    quick, hang = await engine.attempts(busy.id)
    quick = await _until(S.SUCCEEDED, engine, quick.id)
    await _until(S.RUNNING, engine, hang.id)
    clock.offset = 25 * HOUR  # old finished 25 h ago, recent 2 h ago, quick 2 h ago

    jobs = Jobs(engine, Schedule(worktree_ttl=24 * HOUR))
    dry = await jobs.cleanup(dry_run=True)
    assert dry.removed == (old.worktree,) and dry.dry_run
    assert all(Path(a.worktree).exists() for a in (old, recent, quick))
    report = await jobs.cleanup(dry_run=False)
    assert report.removed == dry.removed and not report.dry_run
    assert not Path(old.worktree).exists()
    assert all(Path(a.worktree).exists() for a in (recent, quick, await engine.attempt(hang.id)))
    assert report.bytes_after < report.bytes_before and report.kept == 3
    assert (await engine.attempt(hang.id)).status is S.RUNNING


async def test_worktree_cleanup_cli_defaults_to_the_configured_ttl(tmp_path: Path) -> None:
    from tests.test_cli import forgebot

    repo = make_repo(tmp_path / "repo")
    config = tmp_path / "forgebot.yml"
    fake = str(Path(__file__).parent / "agents" / "fake_agent.py")
    config.write_text(
        "agents:\n"
        f"  fast: {{executor: command, command: [{sys.executable}, {fake}, write, f.txt, x]}}\n"
        "defaults: {agents: [fast]}\n"
        "schedule: {worktree_ttl: 1h}\n"
    )
    assert forgebot(repo, config, "task", "create", "Thing", "--no-live").returncode == 0
    worktree = repo / ".forge" / "worktrees" / "task-1-fast"
    kept = forgebot(repo, config, "worktree", "cleanup")
    assert kept.returncode == 0 and "Removed 0 worktree(s); kept 1." in kept.stdout and worktree.exists()
    bad = forgebot(repo, config, "worktree", "cleanup", "--older-than", "soon")
    assert bad.returncode == 2 and "'soon' is not a duration" in bad.stderr and "Traceback" not in bad.stderr
    dry = forgebot(repo, config, "jobs", "run", "cleanup", "--dry-run", "--older-than", "0")
    assert "Would remove 1 worktree(s)" in dry.stdout and worktree.exists()
    gone = forgebot(repo, config, "worktree", "cleanup", "--older-than", "0")
    assert "Removed 1 worktree(s)" in gone.stdout and not worktree.exists()
    reaper = forgebot(repo, config, "jobs", "run", "reaper")
    assert reaper.returncode == 0 and "Checked 0 active attempt(s)" in reaper.stdout
    nope = forgebot(repo, config, "jobs", "run", "deliveries")
    assert nope.returncode == 1 and "GitHub App" in nope.stderr


# ---- reaper


async def test_reaper_interrupts_an_attempt_whose_forgebot_process_is_gone(engine: Engine, repo: Path) -> None:
    dead = _dead_pid()
    attempt = await _stuck(
        engine, repo, status=S.RUNNING, owner=f"{socket.gethostname()}:{dead}", pid=dead, started_ago=5
    )
    elsewhere = await _stuck(engine, repo, status=S.RUNNING, owner="other-host:1234", pid=dead, started_ago=5)
    seen: list[EngineEvent] = []
    engine.bus.subscribe(seen.append)
    reaper = Reaper(engine, slack=60)
    dry = await reaper.run(dry_run=True)
    assert dry.interrupted == (attempt.id,) and (await engine.attempt(attempt.id)).status is S.RUNNING
    report = await reaper.run()
    assert report.interrupted == (attempt.id,) and report.timed_out == ()
    after = await engine.attempt(attempt.id)
    assert after.status is S.INTERRUPTED and "is gone" in (after.error or "") and after.finished_at
    assert (await engine.attempt(elsewhere.id)).status is S.RUNNING  # another host's to judge
    kinds = [(e.kind, e.task_id) for e in seen]
    assert (EventKind.ATTEMPT_STATUS, attempt.task_id) in kinds and (EventKind.TASK_FINISHED, attempt.task_id) in kinds


async def test_reaper_waits_out_the_slack_before_calling_an_agent_process_gone(
    engine: Engine, repo: Path, clock: Clock
) -> None:
    # The forgebot process that runs it (this one) is alive, but the agent's pid is gone and nothing moves.
    attempt = await _stuck(engine, repo, status=S.RUNNING, owner=owner_id(), pid=_dead_pid(), started_ago=5)
    reaper = Reaper(engine, slack=60)
    assert (await reaper.run()).interrupted == ()  # just exited? its runner may be recording the result
    clock.offset += 30
    assert (await reaper.run()).interrupted == ()
    clock.offset += 31
    assert (await reaper.run()).interrupted == (attempt.id,)
    assert (await engine.attempt(attempt.id)).status is S.INTERRUPTED


async def test_reaper_times_out_an_overdue_attempt_and_kills_its_process(engine: Engine, repo: Path) -> None:
    sleeper = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        overdue = 600 + 60 + 30  # attempt_timeout + slack + more
        running = await _stuck(engine, repo, status=S.RUNNING, owner=owner_id(), pid=sleeper.pid, started_ago=overdue)
        preparing = await _stuck(engine, repo, status=S.PREPARING, owner=owner_id(), pid=None, started_ago=overdue)
        fresh = await _stuck(engine, repo, status=S.RUNNING, owner=owner_id(), pid=sleeper.pid, started_ago=10)
        report = await Reaper(engine, slack=60).run()
        assert report.timed_out == (running.id,) and report.interrupted == (preparing.id,)
        assert (await engine.attempt(running.id)).status is S.TIMED_OUT
        # Preparing cannot time out in the state machine: it is interrupted, with the reason.
        stopped = await engine.attempt(preparing.id)
        assert stopped.status is S.INTERRUPTED and "timed out" in (stopped.error or "")
        assert (await engine.attempt(fresh.id)).status is S.RUNNING
        sleeper.wait(timeout=10)
        assert process_gone(sleeper.pid)
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait()


async def test_reaper_stops_this_engines_own_overdue_runner(engine: Engine, repo: Path, clock: Clock) -> None:
    pidfile = Path(repo).parent / "hang.pid"
    task = await engine.submit(
        title="Hang", description="", repo=str(repo), profiles=[agent("hang", "pidfile", str(pidfile), "hang")]
    )
    (attempt,) = await engine.attempts(task.id)
    await _until(S.RUNNING, engine, attempt.id)
    for _ in range(200):
        if pidfile.exists() and pidfile.read_text().strip():
            break
        await asyncio.sleep(0.05)
    reaper = Reaper(engine, slack=60)
    assert (await reaper.run()).timed_out == ()  # within its time: left to its runner
    clock.offset = 600 + 61
    report = await reaper.run()
    assert report.timed_out == (attempt.id,)
    assert (await engine.attempt(attempt.id)).status is S.TIMED_OUT
    assert process_gone(int(pidfile.read_text()))


# ---- the pure rules


def _attempt(status: S, *, started: float | None = 1000.0, owner: str | None = "h:1", pid: int | None = 7) -> Attempt:
    return Attempt(
        id=1,
        task_id=1,
        profile=AgentProfile("a", "command", command=("x",)),
        branch="forge/1-a",
        worktree="/w",
        status=status,
        created_at=900.0,
        started_at=started,
        owner=owner,
        pid=pid,
    )


@pytest.mark.parametrize(
    ("status", "now", "here", "alive", "gone_since", "expected"),
    [
        (S.RUNNING, 1100.0, False, True, None, None),  # fine
        (S.RUNNING, 1000.0 + 661, True, True, None, S.TIMED_OUT),  # over time, even our own
        (S.CHECKING, 1000.0 + 661, False, True, None, S.TIMED_OUT),
        (S.PREPARING, 1000.0 + 661, False, True, None, S.INTERRUPTED),  # preparing may not time out
        (S.RUNNING, 1000.0 + 659, True, True, None, None),  # within timeout + slack
        (S.RUNNING, 1100.0, False, False, None, S.INTERRUPTED),  # its forgebot is gone
        (S.RUNNING, 1100.0, True, False, None, None),  # ours: our runner watches it
        (S.RUNNING, 1100.0, False, True, 1039.0, S.INTERRUPTED),  # agent gone for a minute
        (S.RUNNING, 1100.0, False, True, 1041.0, None),  # agent gone, but only just
        (S.SUCCEEDED, 9999.0, False, False, 0.0, None),  # finished: never touched
        (S.QUEUED, 9999.0, False, False, 0.0, None),
    ],
)
def test_judge(status: S, now: float, here: bool, alive: bool, gone_since: float | None, expected: S | None) -> None:
    verdict = judge(
        _attempt(status),
        now=now,
        timeout=600,
        slack=60,
        runs_here=here,
        owner_alive=alive,
        pid_gone_since=gone_since,
    )
    assert (verdict.status if verdict else None) is expected


def test_overdue_status_follows_the_state_machine() -> None:
    statuses = [overdue_status(s) for s in (S.PREPARING, S.RUNNING, S.CHECKING)]
    assert statuses == [S.INTERRUPTED, S.TIMED_OUT, S.TIMED_OUT]


def test_doomed_branches_are_only_recorded_forge_branches() -> None:
    attempts = [
        replace(_attempt(S.SUCCEEDED), branch=branch, commit_sha="c" * 40)
        for branch in ("forge/1-a", "forge/1-b", "main", "forge/1-a")
    ]
    assert doomed_branches(attempts, merged=True, head="forge/1-a") == ["forge/1-a", "forge/1-b"]
    assert doomed_branches(attempts, merged=False, head="forge/1-a") == ["forge/1-b"]
    assert doomed_branches(attempts, merged=False, head=None) == ["forge/1-a", "forge/1-b"]


def test_doomed_branches_are_only_ones_forgebot_pushed() -> None:
    pushed = replace(_attempt(S.SUCCEEDED), branch="forge/1-a", commit_sha="c" * 40)
    cancelled = replace(_attempt(S.CANCELLED, started=None), branch="forge/1-b")  # cancelled while queued
    unchanged = replace(_attempt(S.FAILED), branch="forge/1-c")  # finished with no changes: nothing committed
    assert doomed_branches([pushed, cancelled, unchanged], merged=True, head=None) == ["forge/1-a"]
    assert doomed_branches([cancelled, unchanged], merged=False, head="forge/1-a") == []
