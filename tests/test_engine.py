"""The engine end to end on real repositories, real subprocesses and a real SQLite store."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from forgebot.core.models import AttemptStatus, Price, Strategy
from forgebot.engine.engine import Engine, EngineError
from forgebot.engine.events import EngineEvent, EventBus, EventKind
from forgebot.engine.runner import EngineSettings
from forgebot.engine.workspaces import MergeRefused, Workspaces
from forgebot.store import open_store
from tests.support import UNITTEST, agent, breaking_change, git, make_repo, process_gone

S = AttemptStatus


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


def make_engine(tmp_path: Path, environ: dict[str, str] | None = None, **limits: float) -> Engine:
    store = open_store(f"sqlite:///{tmp_path / 'state' / 'forgebot.db'}")
    settings = EngineSettings(**{"kill_grace": 0.5, "cancel_poll": 0.2, **limits})  # type: ignore[arg-type]
    return Engine(store, Workspaces(), settings=settings, environ=environ or {"PATH": os.environ["PATH"]})


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    engine = make_engine(tmp_path)
    await engine.start()
    yield engine
    await engine.shutdown(grace=0)
    engine.store.close()


def statuses(attempts: list) -> dict[str, AttemptStatus]:  # type: ignore[type-arg]
    return {a.agent: a.status for a in attempts}


async def test_three_agents_run_in_parallel_each_on_its_own_branch(engine: Engine, repo: Path) -> None:
    profiles = [
        agent("alpha", "sleep", "0.5", "write", "alpha.txt", "from alpha", "usage", "1000", "200"),
        agent("beta", "sleep", "0.5", "write", "beta.txt", "from beta\nsecond line", "cost", "0.05"),
        agent("gamma", "sleep", "0.5", *breaking_change()),
    ]
    task = await engine.submit(title="Add files", description="", repo=str(repo), profiles=profiles, checks=[UNITTEST])
    attempts = await asyncio.wait_for(engine.wait_task(task.id), 60)
    assert statuses(attempts) == {"alpha": S.SUCCEEDED, "beta": S.SUCCEEDED, "gamma": S.FAILED}
    by_agent = {a.agent: a for a in attempts}
    assert {a.branch for a in attempts} == {"forge/1-alpha", "forge/1-beta", "forge/1-gamma"}
    assert by_agent["alpha"].worktree == str(repo / ".forge" / "worktrees" / "task-1-alpha")
    assert git(repo, "show", "forge/1-beta:beta.txt") == "from beta\nsecond line"
    assert (by_agent["beta"].diff.files, by_agent["beta"].diff.insertions) == (1, 2)
    assert by_agent["gamma"].error == "checks failed: tests"
    assert by_agent["alpha"].usage.tokens_in == 1000
    assert by_agent["beta"].usage.cost_usd == 0.05
    assert all(c.passed for c in by_agent["alpha"].checks)
    assert "forge: Add files" in git(repo, "log", "-1", "--format=%B", "forge/1-alpha")
    assert "agent alpha" in git(repo, "log", "-1", "--format=%B", "forge/1-alpha")
    assert ".forge" not in git(repo, "status", "--porcelain")
    # Parallel: the three half-second agents overlapped.
    starts = sorted(a.started_at for a in attempts if a.started_at)
    ends = sorted(a.finished_at for a in attempts if a.finished_at)
    assert starts[-1] < ends[0]
    comparison = await engine.compare(task.id)
    assert comparison.winner is not None and comparison.winner.agent in {"alpha", "beta"}


async def test_limits_are_never_exceeded(tmp_path: Path, repo: Path) -> None:
    engine = make_engine(tmp_path, max_parallel=2, per_agent=2)
    await engine.start()
    running: set[int] = set()
    peak = 0

    def watch(event: EngineEvent) -> None:
        nonlocal peak
        if event.kind is EventKind.ATTEMPT_STATUS and event.attempt:
            (running.add if event.attempt.status.active else running.discard)(event.attempt.id)
            peak = max(peak, len(running))

    engine.bus.subscribe(watch)
    profiles = [agent(f"a{i}", "sleep", "0.3", "write", f"f{i}.txt", "x") for i in range(5)]
    task = await engine.submit(title="Many", description="", repo=str(repo), profiles=profiles)
    attempts = await asyncio.wait_for(engine.wait_task(task.id), 60)
    assert all(a.status is S.SUCCEEDED for a in attempts)
    assert peak == 2
    # Submission order is the start order.
    assert [a.id for a in sorted(attempts, key=lambda a: a.started_at or 0)] == sorted(a.id for a in attempts)
    await engine.shutdown(grace=0)


async def test_per_agent_limit_queues_repeats_of_one_agent(tmp_path: Path, repo: Path) -> None:
    engine = make_engine(tmp_path, max_parallel=4, per_agent=1)
    await engine.start()
    same = agent("solo", "sleep", "0.3", "write", "solo.txt", "x")
    task = await engine.submit(title="Repeat", description="", repo=str(repo), profiles=[same, same, same])
    attempts = await asyncio.wait_for(engine.wait_task(task.id), 60)
    assert [a.branch for a in attempts] == ["forge/1-solo", "forge/1-solo-2", "forge/1-solo-3"]
    windows = sorted((a.started_at or 0, a.finished_at or 0) for a in attempts)
    assert all(windows[i][1] <= windows[i + 1][0] for i in range(2)), windows
    await engine.shutdown(grace=0)


async def test_crash_hang_flood_and_silence_fail_only_their_own_attempt(tmp_path: Path, repo: Path) -> None:
    engine = make_engine(tmp_path, attempt_timeout=2.0, log_cap_bytes=100_000, max_output_bytes=30_000_000)
    await engine.start()
    profiles = [
        agent("good", "write", "good.txt", "ok"),
        agent("crash", "write", "half.txt", "x", "say", "boom: segfault", "exit", "3"),
        agent("hang", "hang"),
        agent("chatty", "flood", "8", "write", "chatty.txt", "survived"),
        agent("flood", "flood", "40", "write", "flood.txt", "never"),
        agent("silent"),
        agent("liar", "error", "API Error: 500 overloaded", "write", "l.txt", "x"),
    ]
    task = await engine.submit(title="Robust", description="", repo=str(repo), profiles=profiles)
    attempts = {a.agent: a for a in await asyncio.wait_for(engine.wait_task(task.id), 60)}
    assert attempts["good"].status is S.SUCCEEDED
    assert attempts["crash"].status is S.FAILED
    assert attempts["crash"].error == "agent exited with code 3: boom: segfault"
    assert attempts["hang"].status is S.TIMED_OUT and attempts["hang"].error == "timed out after 2s"
    assert attempts["chatty"].status is S.SUCCEEDED  # lots of output, under the limit: only the log is capped
    assert os.path.getsize(attempts["chatty"].log_path or "") < 200_000
    assert attempts["flood"].status is S.FAILED
    assert (attempts["flood"].error or "").startswith("agent stopped: it printed more than 30 MB")
    assert attempts["silent"].status is S.FAILED and attempts["silent"].error == "no changes"
    assert attempts["liar"].status is S.FAILED
    assert attempts["liar"].error == "agent reported an error: API Error: 500 overloaded"
    await engine.shutdown(grace=0)


async def test_cancel_stops_the_whole_process_group(engine: Engine, repo: Path, tmp_path: Path) -> None:
    child_file, leader_file = tmp_path / "child.pid", tmp_path / "leader.pid"
    profiles = [
        agent("stuck", "pidfile", str(leader_file), "child", str(child_file), "hang"),
        agent("fine", "sleep", "1", "write", "fine.txt", "x"),
    ]
    task = await engine.submit(title="Cancel", description="", repo=str(repo), profiles=profiles)
    for _ in range(600):  # generous: the machine may be busy; the loop ends as soon as the file is there
        if child_file.exists() and child_file.read_text():
            break
        await asyncio.sleep(0.05)
    stuck = next(a for a in await engine.attempts(task.id) if a.agent == "stuck")
    result = await engine.cancel(task.id, stuck.id)
    assert result[0].status is S.CANCELLED
    assert process_gone(int(leader_file.read_text()))
    assert process_gone(int(child_file.read_text()))
    attempts = await asyncio.wait_for(engine.wait_task(task.id), 30)
    assert statuses(attempts) == {"stuck": S.CANCELLED, "fine": S.SUCCEEDED}


async def test_cancel_whole_task_includes_queued_attempts(tmp_path: Path, repo: Path) -> None:
    engine = make_engine(tmp_path, max_parallel=1)
    await engine.start()
    profiles = [agent("first", "hang"), agent("second", "write", "x.txt", "x")]
    task = await engine.submit(title="Cancel all", description="", repo=str(repo), profiles=profiles)
    await asyncio.sleep(0.5)
    cancelled = await engine.cancel(task.id)
    assert [a.status for a in cancelled] == [S.CANCELLED, S.CANCELLED]
    assert cancelled[1].error == "cancelled before it started"
    await engine.shutdown(grace=0)


async def test_fork_and_retry(engine: Engine, repo: Path, tmp_path: Path) -> None:
    flag = tmp_path / "second-time"
    # Fails the first time (no changes), works once the flag file exists.
    flaky = agent("flaky", "write", str(flag), "seen")
    task = await engine.submit(title="Fork", description="", repo=str(repo), profiles=[flaky])
    first = (await asyncio.wait_for(engine.wait_task(task.id), 30))[0]
    assert first.status is S.FAILED and first.error == "no changes"
    forked = await engine.fork(task.id, agent("flaky", "write", "f.txt", "x"))
    assert forked.branch == "forge/1-flaky-2"
    await asyncio.wait_for(engine.wait_task(task.id), 30)
    with pytest.raises(EngineError, match="only a finished attempt that did not succeed"):
        await engine.retry(forked.id)
    retried = await engine.retry(first.id)
    assert retried.status is S.QUEUED and retried.error is None
    final = {a.id: a for a in await asyncio.wait_for(engine.wait_task(task.id), 30)}
    assert final[first.id].status is S.FAILED  # still no change in the worktree: the flag lives outside it
    assert final[forked.id].status is S.SUCCEEDED


async def test_restart_marks_orphaned_attempts_interrupted_and_they_can_be_retried(tmp_path: Path, repo: Path) -> None:
    engine = make_engine(tmp_path)
    task = await engine.submit(
        title="Crash",
        description="",
        repo=str(repo),
        profiles=[agent("a", "write", "a.txt", "x")],
        start=False,
    )
    attempt = (await engine.attempts(task.id))[0]
    # What a killed daemon leaves behind: an attempt running under an owner process that no longer exists.
    engine.store.transition(attempt.id, S.PREPARING, owner=f"{socket.gethostname()}:999999999", started_at=1.0)
    engine.store.transition(attempt.id, S.RUNNING)
    engine.store.close()

    restarted = make_engine(tmp_path)
    recovered = await restarted.start()
    assert [(a.id, a.status) for a in recovered] == [(attempt.id, S.INTERRUPTED)]
    assert "stopped" in (recovered[0].error or "")
    await restarted.retry(attempt.id)
    final = await asyncio.wait_for(restarted.wait_task(task.id), 30)
    assert final[0].status is S.SUCCEEDED
    await restarted.shutdown(grace=0)


async def test_secrets_stay_out_and_profile_env_is_resolved(tmp_path: Path, repo: Path) -> None:
    environ = {"PATH": os.environ["PATH"], "FORGEBOT_GITHUB_TOKEN": "ghp_secret", "MY_KEY": "k-123"}
    engine = make_engine(tmp_path, environ=environ)
    await engine.start()
    dump = tmp_path / "env.json"
    profile = agent("envy", "env", str(dump), "write", "e.txt", "x", env={"API_KEY": "${MY_KEY}"})
    task = await engine.submit(title="Env", description="", repo=str(repo), profiles=[profile])
    await asyncio.wait_for(engine.wait_task(task.id), 30)
    seen = json.loads(dump.read_text())
    assert seen["API_KEY"] == "k-123"
    assert "FORGEBOT_GITHUB_TOKEN" not in seen and "MY_KEY" not in seen
    assert seen["HOME"].endswith("attempt-1") and not seen["HOME"].startswith(str(repo / ".forge" / "worktrees"))
    await engine.shutdown(grace=0)


async def test_missing_env_variable_fails_the_attempt_with_a_clear_error(engine: Engine, repo: Path) -> None:
    profile = agent("needy", "write", "n.txt", "x", env={"API_KEY": "${NOT_SET_ANYWHERE}"})
    task = await engine.submit(title="Env", description="", repo=str(repo), profiles=[profile])
    (attempt,) = await asyncio.wait_for(engine.wait_task(task.id), 30)
    assert attempt.status is S.FAILED
    assert "NOT_SET_ANYWHERE" in (attempt.error or "")


async def test_cost_from_profile_price_when_the_agent_reports_only_tokens(engine: Engine, repo: Path) -> None:
    priced = agent("priced", "usage", "1000000", "100000", "write", "p.txt", "x", price=Price(3.0, 15.0))
    unpriced = agent("unpriced", "usage", "10", "10", "write", "u.txt", "x")
    task = await engine.submit(title="Cost", description="", repo=str(repo), profiles=[priced, unpriced])
    attempts = {a.agent: a for a in await asyncio.wait_for(engine.wait_task(task.id), 30)}
    assert attempts["priced"].usage.cost_usd == pytest.approx(4.5)
    assert attempts["unpriced"].usage.cost_usd is None  # unknown stays unknown, never 0
    comparison = await engine.compare(task.id)
    assert comparison.total_cost == pytest.approx(4.5) and not comparison.cost_complete


async def test_cascade_stops_when_the_cheap_tier_is_good_enough(engine: Engine, repo: Path) -> None:
    cheap = agent("cheap", "write", "c.txt", "x", tier=1)
    pricey = agent("pricey", "write", "p.txt", "x", tier=2)
    task = await engine.submit(
        title="Cascade",
        description="",
        repo=str(repo),
        profiles=[cheap, pricey],
        strategy=Strategy.CASCADE,
        checks=[UNITTEST],
    )
    attempts = {a.agent: a for a in await asyncio.wait_for(engine.wait_task(task.id), 30)}
    assert attempts["cheap"].status is S.SUCCEEDED
    assert attempts["pricey"].status is S.CANCELLED
    assert (attempts["pricey"].error or "").startswith("not needed: a cheaper tier reached quality")


async def test_cascade_skipping_two_tiers_leaves_the_engine_free_for_more_work(engine: Engine, repo: Path) -> None:
    # Skipping a tier used to re-enter the scheduler under its own lock: tier 3 stayed queued forever and the
    # next submit on the same engine hung.
    tiers = [agent(f"t{n}", "write", f"t{n}.txt", "x", tier=n) for n in (1, 2, 3)]
    task = await engine.submit(
        title="Cascade", description="", repo=str(repo), profiles=tiers, strategy=Strategy.CASCADE, checks=[UNITTEST]
    )
    attempts = statuses(await asyncio.wait_for(engine.wait_task(task.id), 30))
    assert attempts == {"t1": S.SUCCEEDED, "t2": S.CANCELLED, "t3": S.CANCELLED}
    again = await asyncio.wait_for(
        engine.submit(title="Next", description="", repo=str(repo), profiles=[agent("solo", "write", "s.txt", "x")]),
        10,
    )
    assert statuses(await asyncio.wait_for(engine.wait_task(again.id), 30)) == {"solo": S.SUCCEEDED}


async def test_per_repo_limit_holds_across_tasks(tmp_path: Path) -> None:
    engine = make_engine(tmp_path, max_parallel=4, per_repo=1, per_agent=4)
    await engine.start()
    repos = [make_repo(tmp_path / "one"), make_repo(tmp_path / "two")]
    running: dict[str, set[int]] = {str(r): set() for r in repos}
    peaks = dict.fromkeys(running, 0)
    repo_of: dict[int, str] = {}

    def watch(event: EngineEvent) -> None:
        if event.kind is EventKind.ATTEMPT_STATUS and event.attempt and event.task_id in repo_of:
            bucket = running[repo_of[event.task_id]]
            (bucket.add if event.attempt.status.active else bucket.discard)(event.attempt.id)
            peaks[repo_of[event.task_id]] = max(peaks[repo_of[event.task_id]], len(bucket))

    engine.bus.subscribe(watch)
    tasks = []
    for path in repos:
        profiles = [agent(f"a{i}", "sleep", "0.3", "write", f"f{i}.txt", "x") for i in range(3)]
        task = await engine.submit(title="Per repo", description="", repo=str(path), profiles=profiles, start=False)
        repo_of[task.id] = task.repo
        tasks.append(task)
    for task in tasks:
        await engine.serve(task.id)
    for task in tasks:
        assert {a.status for a in await asyncio.wait_for(engine.wait_task(task.id), 60)} == {S.SUCCEEDED}
    assert peaks == dict.fromkeys(running, 1)
    await engine.shutdown(grace=0)


async def test_cascade_escalates_when_the_cheap_tier_fails(engine: Engine, repo: Path) -> None:
    cheap = agent("cheap", *breaking_change(), tier=1)
    pricey = agent("pricey", "write", "p.txt", "x", tier=2)
    task = await engine.submit(
        title="Cascade",
        description="",
        repo=str(repo),
        profiles=[cheap, pricey],
        strategy=Strategy.CASCADE,
        checks=[UNITTEST],
    )
    attempts = {a.agent: a for a in await asyncio.wait_for(engine.wait_task(task.id), 30)}
    assert attempts["cheap"].status is S.FAILED
    assert attempts["pricey"].status is S.SUCCEEDED
    assert (attempts["pricey"].started_at or 0) >= (attempts["cheap"].finished_at or 0)


async def test_merge_squashes_into_base_and_refuses_when_base_moved(engine: Engine, repo: Path) -> None:
    profiles = [agent("one", "write", "one.txt", "1\n2"), agent("two", "write", "two.txt", "2")]
    task = await engine.submit(title="Merge me", description="", repo=str(repo), profiles=profiles)
    one, two = await asyncio.wait_for(engine.wait_task(task.id), 30)
    result = await engine.merge(task.id, one.id)
    assert (repo / "one.txt").read_text() == "1\n2\n"
    assert git(repo, "rev-parse", "main") == result.new_sha
    assert git(repo, "log", "-1", "--format=%s") == "Merge me"
    with pytest.raises(MergeRefused, match="moved"):
        await engine.merge(task.id, two.id)
    rebased = await engine.merge(task.id, two.id, rebase=True)
    assert rebased.rebased and (repo / "two.txt").exists() and (repo / "one.txt").exists()


async def test_merge_refuses_unfinished_and_empty_attempts(engine: Engine, repo: Path) -> None:
    task = await engine.submit(title="Nope", description="", repo=str(repo), profiles=[agent("idle")])
    (attempt,) = await asyncio.wait_for(engine.wait_task(task.id), 30)
    with pytest.raises(EngineError, match="changed nothing"):
        await engine.merge(task.id, attempt.id)
    with pytest.raises(EngineError, match="not found"):
        await engine.merge(task.id, 999)


async def test_delete_attempts_by_status_and_cleanup_worktrees(engine: Engine, repo: Path) -> None:
    profiles = [agent("ok", "write", "ok.txt", "x"), agent("bad", "exit", "1")]
    task = await engine.submit(title="Tidy", description="", repo=str(repo), profiles=profiles)
    ok, bad = await asyncio.wait_for(engine.wait_task(task.id), 30)
    with pytest.raises(EngineError, match="only finished attempts"):
        await engine.delete_attempts([S.RUNNING])
    deleted = await engine.delete_attempts([S.FAILED])
    assert [a.id for a in deleted] == [bad.id]
    assert not os.path.exists(bad.worktree) and "forge/1-bad" not in git(repo, "branch", "--list")
    assert [a.id for a in await engine.attempts(task.id)] == [ok.id]

    dry = await engine.cleanup_worktrees(dry_run=True)
    assert dry.removed == (ok.worktree,) and os.path.exists(ok.worktree)
    report = await engine.cleanup_worktrees()
    assert report.removed == (ok.worktree,) and not os.path.exists(ok.worktree)
    assert report.bytes_after < report.bytes_before
    assert "forge/1-ok" in git(repo, "branch", "--list")  # the work stays on its branch


async def test_followup_resumes_in_the_same_worktree_and_adds_a_commit(
    engine: Engine, repo: Path, tmp_path: Path
) -> None:
    seen = tmp_path / "followup-env.json"
    # The command executor hands the session id to the program as FORGEBOT_SESSION on a follow-up.
    profile = agent(
        "talker",
        "say",
        '::forgebot {"session": "s-1"}',
        "usage",
        "10",
        "5",
        "append",
        "notes.txt",
        "line",
        "env",
        str(seen),
    )
    task = await engine.submit(title="Notes", description="", repo=str(repo), profiles=[profile])
    (first,) = await asyncio.wait_for(engine.wait_task(task.id), 30)
    assert first.status is S.SUCCEEDED and first.session_id == "s-1"
    with pytest.raises(EngineError, match="needs a prompt"):
        await engine.followup(first.id, "  ")
    queued = await engine.followup(first.id, "also add a second line")
    assert queued.status is S.QUEUED and queued.followup == "also add a second line"
    (second,) = await asyncio.wait_for(engine.wait_task(task.id), 30)
    assert second.status is S.SUCCEEDED and second.followup is None
    assert json.loads(seen.read_text())["FORGEBOT_SESSION"] == "s-1"
    assert (Path(second.worktree) / "notes.txt").read_text() == "line\nline\n"
    assert second.diff.insertions == 2 and second.usage.tokens_in == 20  # both runs counted
    log = git(repo, "log", "--format=%s", "forge/1-talker").splitlines()
    assert log[:2] == ["forge: follow-up: also add a second line", "forge: Notes"]
    prompt = (repo / ".forge" / "homes" / f"attempt-{first.id}" / "prompt.md").read_text()
    assert prompt == "also add a second line"


async def test_followup_refuses_a_running_attempt_or_a_cleaned_worktree(engine: Engine, repo: Path) -> None:
    task = await engine.submit(
        title="Busy", description="", repo=str(repo), profiles=[agent("slow", "sleep", "2", "write", "s.txt", "x")]
    )
    (attempt,) = await engine.attempts(task.id)
    with pytest.raises(EngineError, match="waits until it is done"):
        await engine.followup(attempt.id, "more")
    await asyncio.wait_for(engine.wait_task(task.id), 30)
    await engine.cleanup_worktrees()
    with pytest.raises(EngineError, match="worktree was cleaned up"):
        await engine.followup(attempt.id, "more")


async def test_missing_cli_and_missing_key_fail_with_instructions(engine: Engine, repo: Path) -> None:
    from forgebot.core.models import AgentProfile

    no_key = AgentProfile("claude", "claude", env={"ANTHROPIC_API_KEY": "${NOT_EXPORTED_KEY}"})
    no_cli = AgentProfile("codex", "codex", env={"OPENAI_API_KEY": "sk-x"})
    task = await engine.submit(title="Missing", description="", repo=str(repo), profiles=[no_key, no_cli])
    attempts = {a.agent: a for a in await asyncio.wait_for(engine.wait_task(task.id), 30)}
    assert attempts["claude"].status is S.FAILED
    assert "NOT_EXPORTED_KEY" in (attempts["claude"].error or "") and "export it" in (attempts["claude"].error or "")
    assert attempts["codex"].status is S.FAILED
    assert "`codex` is not installed: npm install" in (attempts["codex"].error or "")


def test_a_queue_subscriber_too_far_behind_is_ended_not_raised_at() -> None:
    bus = EventBus()
    queue, unsubscribe = bus.subscribe_queue(maxsize=3)
    others: list[EngineEvent] = []
    bus.subscribe(others.append)
    status, progress = EngineEvent(EventKind.ATTEMPT_STATUS, 1), EngineEvent(EventKind.ATTEMPT_PROGRESS, 1)
    with capture_logs() as logs:
        for event in (status, status, status, progress, progress):  # full: progress ticks are dropped
            bus.publish(event)
        assert queue.qsize() == 3 and len(bus._listeners) == 2
        bus.publish(status)  # a status change finds no room: the subscription ends
        bus.publish(status)
    assert [queue.get_nowait() for _ in range(queue.qsize())] == [status, status, status, None]
    assert len(bus._listeners) == 1 and len(others) == 7  # the other listener saw everything
    assert [entry["event"] for entry in logs] == ["event_subscriber_too_slow"]  # once, and no traceback
    unsubscribe()  # the stream's own unsubscribe afterwards is harmless
    assert len(bus._listeners) == 1
