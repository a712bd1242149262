"""The `forgebot` command line, run as a real process on a real repository."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import FAKE_AGENT, PYTHON, git, make_repo, process_gone

CONFIG = """\
agents:
  fast:  {{executor: command,
          command: ["{py}", "{fake}", "sleep", "0.3", "write", "fast.txt", "fast", "usage", "100", "20"],
          price: {{input_per_mtok: 1.0, output_per_mtok: 2.0}}}}
  slow:  {{executor: command, command: ["{py}", "{fake}", "sleep", "1", "write", "slow.txt", "a\\nb\\nc"]}}
  broken: {{executor: command, command: ["{py}", "{fake}", "write", "app.py", "def answer() -> int:\\n    return 0"]}}
  stuck: {{executor: command, command: ["{py}", "{fake}", "pidfile", "{pidfile}", "hang"]}}
defaults: {{agents: [fast]}}
checks:
  - {{name: tests, run: ["{py}", "-m", "unittest", "-q"], timeout: 60}}
limits: {{attempt_timeout: 1m}}
"""


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    repo = make_repo(tmp_path / "repo")
    config = tmp_path / "forgebot.yml"
    config.write_text(CONFIG.format(py=PYTHON, fake=FAKE_AGENT, pidfile=tmp_path / "stuck.pid"))
    return repo, config


def forgebot(repo: Path, config: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORGEBOT_")}
    return subprocess.run(
        [sys.executable, "-m", "forgebot.cli", "--repo", str(repo), "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**env, "COLUMNS": "200"},
    )


def test_create_runs_agents_in_parallel_and_prints_the_comparison(setup: tuple[Path, Path]) -> None:
    repo, config = setup
    done = forgebot(
        repo,
        config,
        "task",
        "create",
        "Add things",
        "--agent",
        "fast",
        "--agent",
        "slow",
        "--agent",
        "broken",
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Task 1 created on main" in out
    assert "attempt 1 fast: succeeded" in out and "attempt 3 broken: failed: checks failed: tests" in out
    assert "Comparison" in out and "fast wins" in out
    assert "faster than running them one by one" in out
    assert "Total cost: $0.0001 (some costs unknown)" in out
    assert set(git(repo, "branch", "--list", "forge/*", "--format=%(refname:short)").split()) == {
        "forge/1-fast",
        "forge/1-slow",
        "forge/1-broken",
    }
    listing = forgebot(repo, config, "task", "list")
    assert "Add things" in listing.stdout and "succeeded" in listing.stdout
    status = forgebot(repo, config, "task", "status", "1")
    assert "forge/1-slow" in status.stdout and "+3/-0" in status.stdout
    compare = forgebot(repo, config, "task", "compare", "1")
    assert "fast wins" in compare.stdout


def test_merge_fork_delete_and_cleanup(setup: tuple[Path, Path]) -> None:
    repo, config = setup
    assert forgebot(repo, config, "task", "create", "Fast thing").returncode == 0
    fork = forgebot(repo, config, "task", "fork", "1", "--agent", "fast")
    assert fork.returncode == 0 and "forge/1-fast-2" in fork.stdout
    merged = forgebot(repo, config, "task", "merge", "1", "--attempt", "1")
    assert merged.returncode == 0, merged.stderr
    assert (repo / "fast.txt").read_text() == "fast\n"
    refused = forgebot(repo, config, "task", "merge", "1", "--attempt", "2")
    assert refused.returncode == 1 and "moved" in refused.stderr and "Traceback" not in refused.stderr
    dry = forgebot(repo, config, "worktree", "cleanup", "--dry-run")
    assert "Would remove 2 worktree(s)" in dry.stdout
    assert (repo / ".forge" / "worktrees" / "task-1-fast").exists()
    cleaned = forgebot(repo, config, "worktree", "cleanup")
    assert "Removed 2 worktree(s)" in cleaned.stdout
    assert not (repo / ".forge" / "worktrees" / "task-1-fast").exists()
    deleted = forgebot(repo, config, "attempts", "delete", "--status", "succeeded", "--task", "1")
    assert "Deleted 2 attempt(s)" in deleted.stdout


def test_detached_task_can_be_watched_and_cancelled_from_another_process(
    setup: tuple[Path, Path], tmp_path: Path
) -> None:
    repo, config = setup
    started = forgebot(repo, config, "task", "create", "Hang", "--agent", "stuck", "--agent", "fast", "--detach")
    assert started.returncode == 0 and "Running in the background" in started.stdout
    pidfile = tmp_path / "stuck.pid"
    deadline = time.time() + 30
    while not (pidfile.exists() and pidfile.read_text()) and time.time() < deadline:
        time.sleep(0.1)
    agent_pid = int(pidfile.read_text())
    processes = forgebot(repo, config, "processes", "list")
    assert "stuck" in processes.stdout and str(agent_pid) in processes.stdout
    cancelled = forgebot(repo, config, "task", "cancel", "1", "--attempt", "1")
    assert cancelled.returncode == 0 and "attempt 1 stuck: cancelled" in cancelled.stdout
    with pytest.raises(ProcessLookupError):
        os.kill(agent_pid, 0)
    deadline = time.time() + 30
    while "running" in (status := forgebot(repo, config, "task", "status", "1")).stdout and time.time() < deadline:
        time.sleep(0.3)
    assert "cancelled" in status.stdout and "succeeded" in status.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["task", "create", "X", "--agent", "nope"],
            "unknown agent 'nope' (configured: aider, amp, broken, claude, codex, copilot, cursor, fast, gemini, "
            "opencode, qwen, slow, stuck)",
        ),
        (["task", "status", "42"], "task 42 not found"),
        (["task", "merge", "1", "--attempt", "9"], "not found"),
    ],
)
def test_errors_are_one_clear_line(setup: tuple[Path, Path], args: list[str], message: str) -> None:
    repo, config = setup
    done = forgebot(repo, config, *args)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"forgebot: error: {done.stderr.strip().split('error: ', 1)[1]}"]
    assert message in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["worktree", "cleanup", "--older-than", "xyz"], "'xyz' is not a duration"),
        (["task", "create", "X", "--threshold", "5"], "'5' is not a number from 0 to 1"),
    ],
)
def test_bad_option_values_are_usage_errors(setup: tuple[Path, Path], args: list[str], message: str) -> None:
    repo, config = setup
    done = forgebot(repo, config, *args)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_bad_config_names_the_key(setup: tuple[Path, Path], tmp_path: Path) -> None:
    repo, _ = setup
    bad = tmp_path / "bad.yml"
    bad.write_text("limits: {max_parallel: lots}\n")
    done = forgebot(repo, bad, "task", "list")
    assert done.returncode == 1 and "limits.max_parallel" in done.stderr and "Traceback" not in done.stderr


def test_not_a_repository(tmp_path: Path, setup: tuple[Path, Path]) -> None:
    _, config = setup
    empty = tmp_path / "empty"
    empty.mkdir()
    done = forgebot(empty, config, "task", "list")
    assert done.returncode == 1 and "forgebot: error:" in done.stderr and "Traceback" not in done.stderr


def test_followup_adds_a_commit_to_the_attempt(setup: tuple[Path, Path]) -> None:
    repo, config = setup
    assert forgebot(repo, config, "task", "create", "Fast thing").returncode == 0
    done = forgebot(repo, config, "task", "followup", "1", "--attempt", "1", "now add docs")
    assert done.returncode == 0, done.stderr
    assert "Follow-up queued for attempt 1 (fast)" in done.stdout
    assert git(repo, "log", "-1", "--format=%s", "forge/1-fast") == "forge: follow-up: now add docs"
    wrong = forgebot(repo, config, "task", "followup", "1", "--attempt", "9", "x")
    assert wrong.returncode == 1 and "attempt 9 not found" in wrong.stderr


def test_agents_list_shows_builtins_and_configured_profiles(setup: tuple[Path, Path]) -> None:
    repo, config = setup
    env_free = forgebot(repo, config, "agents", "list")
    assert env_free.returncode == 0, env_free.stderr
    out = env_free.stdout
    for name in ("claude", "codex", "gemini", "qwen", "opencode", "copilot", "aider", "cursor", "amp", "fast"):
        assert f"│ {name} " in out, name
    assert "missing: ANTHROPIC_API_KEY" in out or "ANTHROPIC_API_KEY" in out
    assert "npm install -g @anthropic-ai/claude-code" in out or "yes" in out


def test_agents_check_runs_a_smoke_task_outside_the_repository(setup: tuple[Path, Path]) -> None:
    repo, config = setup
    done = forgebot(repo, config, "agents", "check", "fast")
    assert done.returncode == 0, done.stderr
    assert "fast: ok in" in done.stdout and "tokens in/out: 100/20" in done.stdout
    assert git(repo, "branch", "--list", "forge/*") == ""  # nothing happened to the user's repository
    broken = forgebot(repo, config, "agents", "check", "claude")
    assert broken.returncode == 1 and "claude: failed" in broken.stdout


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_cli_kills_its_agents_and_leaves_nothing_queued(
    setup: tuple[Path, Path], tmp_path: Path, signum: int
) -> None:
    repo, config = setup
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORGEBOT_")}
    argv = [sys.executable, "-m", "forgebot.cli", "--repo", str(repo), "--config", str(config)]
    create = [*argv, "task", "create", "Stop me", "--agent", "stuck", "--agent", "fast", "--no-live"]
    process = subprocess.Popen(
        create, env={**env, "FORGEBOT_LIMITS__MAX_PARALLEL": "1"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    pidfile = tmp_path / "stuck.pid"
    deadline = time.time() + 30
    while not (pidfile.exists() and pidfile.read_text()) and time.time() < deadline:
        time.sleep(0.1)
    agent_pid = int(pidfile.read_text())
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == (130 if signum == signal.SIGINT else 143)
    assert "interrupted" in stderr.decode()
    assert process_gone(agent_pid)
    status = forgebot(repo, config, "task", "status", "1").stdout
    assert "queued" not in status and status.count("interrupted") >= 2  # the running one and the waiting one
    retried = forgebot(repo, config, "task", "retry", "1", "--attempt", "2", "--no-live")
    assert retried.returncode == 0, retried.stderr
