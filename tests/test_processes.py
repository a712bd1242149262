import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from forgebot.engine.processes import (
    LINE_MAX_BYTES,
    TAIL_BYTES,
    ProcessResult,
    ProcessSpec,
    ProcessStartError,
    kill_group_now,
    pid_alive,
    run_process,
    scrubbed_env,
    spawn_detached,
    truncation_marker,
)

# a regression in stopping children would otherwise hang a test for the helpers' 60 s sleeps
pytestmark = pytest.mark.timeout(20)

PROGRAMS = Path(__file__).parent / "programs"


def py(program: str, *args: str) -> tuple[str, ...]:
    return (sys.executable, str(PROGRAMS / program), *args)


def make_spec(tmp_path: Path, argv: tuple[str, ...], **kwargs: Any) -> ProcessSpec:
    kwargs.setdefault("cwd", str(tmp_path))
    kwargs.setdefault("env", scrubbed_env(str(tmp_path / "home")))
    kwargs.setdefault("timeout", 10.0)
    return ProcessSpec(argv=argv, **kwargs)


async def run_collecting(spec: ProcessSpec) -> tuple[ProcessResult, list[str]]:
    lines: list[str] = []
    result = await run_process(spec, on_line=lines.append)
    return result, lines


def wait_dead(pid: int, within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


async def wait_for_file(path: Path, within: float = 5.0) -> int:
    deadline = time.monotonic() + within
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        await asyncio.sleep(0.02)
    return int(path.read_text())


async def test_ok_exit_delivers_lines_in_order(tmp_path: Path) -> None:
    started: list[int] = []
    lines: list[str] = []
    result = await run_process(make_spec(tmp_path, py("lines.py", "6", "0")), lines.append, started.append)

    expected = [f"line {i}" for i in range(6)]
    assert lines == expected  # stderr is merged into stdout in the order written
    assert result.ok and result.exit_code == 0 and result.signal is None
    assert not result.timed_out and not result.cancelled and not result.truncated
    assert result.output_bytes == sum(len(line) + 1 for line in expected)
    assert result.tail.endswith("line 5\n")
    assert len(started) == 1 and started[0] > 0


async def test_nonzero_exit_is_not_ok(tmp_path: Path) -> None:
    result, lines = await run_collecting(make_spec(tmp_path, py("lines.py", "1", "3")))

    assert result.exit_code == 3
    assert not result.ok and not result.timed_out
    assert lines == ["line 0"]


async def test_child_leads_its_own_process_group(tmp_path: Path) -> None:
    started: list[int] = []
    lines: list[str] = []
    await run_process(make_spec(tmp_path, py("show_env.py")), lines.append, started.append)

    seen = json.loads(lines[0])
    assert seen["pid"] == seen["pgid"] == started[0]


async def test_env_is_scrubbed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGEBOT_GITHUB_TOKEN", "ghp_secret")
    home = tmp_path / "home"
    env = scrubbed_env(str(home), {"AGENT_API_KEY": "explicit"})
    result, lines = await run_collecting(make_spec(tmp_path, py("show_env.py"), env=env))

    seen = json.loads(lines[0])["env"]
    assert result.ok
    assert "FORGEBOT_GITHUB_TOKEN" not in seen
    assert seen["AGENT_API_KEY"] == "explicit"
    assert seen["HOME"] == str(home)
    assert seen["TMPDIR"] == str(home / "tmp") and (home / "tmp").is_dir()
    assert seen["LC_ALL"] == "C.UTF-8" and seen["TERM"] == "dumb"
    allowed = {"PATH", "LANG", "LC_ALL", "TERM", "HOME", "TMPDIR", "USER", "LOGNAME", "AGENT_API_KEY"}
    assert set(seen) <= allowed


def test_scrubbed_env_defaults_and_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PATH")
    monkeypatch.setenv("USER", "alice")
    env = scrubbed_env(str(tmp_path), {"TERM": "xterm"})

    assert env["PATH"] == "/usr/local/bin:/usr/bin:/bin"
    assert env["USER"] == "alice"
    assert env["TERM"] == "xterm"  # explicit values win


def test_scrubbed_env_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="absolute"):
        scrubbed_env("relative/home")
    with pytest.raises(ValueError, match="invalid environment variable"):
        scrubbed_env(str(tmp_path), {"A=B": "x"})


async def test_cwd_is_respected(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    _, lines = await run_collecting(make_spec(tmp_path, py("show_env.py"), cwd=str(workdir)))

    assert Path(json.loads(lines[0])["cwd"]).resolve() == workdir.resolve()


async def test_stdin_is_empty_without_data(tmp_path: Path) -> None:
    result, lines = await run_collecting(make_spec(tmp_path, py("read_stdin.py"), timeout=5.0))

    assert result.ok
    assert lines[0] == "0"


async def test_stdin_data_is_delivered(tmp_path: Path) -> None:
    result, lines = await run_collecting(make_spec(tmp_path, py("read_stdin.py"), stdin_data=b"hello\nworld"))

    assert result.ok
    assert lines == ["11", "hello", "world"]


async def test_large_stdin_data_is_delivered_whole(tmp_path: Path) -> None:
    data = b"y" * 3_000_000
    result, lines = await run_collecting(make_spec(tmp_path, py("read_stdin.py"), stdin_data=data))

    assert result.ok
    assert lines[0] == str(len(data))


async def test_timeout_kills_child_and_grandchild(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    started: list[int] = []
    spec = make_spec(tmp_path, py("spawn_grandchild.py", str(pidfile), "hang"), timeout=1.0, kill_grace=0.5)
    result = await run_process(spec, on_start=started.append)

    assert result.timed_out and not result.ok
    assert result.exit_code is None
    assert result.signal == signal.SIGINT  # it went at the first, polite step
    assert 1.0 <= result.duration < 3.0
    assert wait_dead(int(pidfile.read_text()))
    assert not pid_alive(started[0])


async def test_cancel_kills_group_and_reraises(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    ready = asyncio.Event()
    started: list[int] = []

    def on_line(line: str) -> None:
        if line == "ready":
            ready.set()

    spec = make_spec(tmp_path, py("spawn_grandchild.py", str(pidfile), "hang"), kill_grace=0.5)
    task = asyncio.create_task(run_process(spec, on_line, started.append))
    await asyncio.wait_for(ready.wait(), 5.0)
    grandchild = int(pidfile.read_text())
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    assert not pid_alive(started[0])
    assert wait_dead(grandchild)


async def test_child_ignoring_int_and_term_dies_by_kill(tmp_path: Path) -> None:
    grace = 0.3
    spec = make_spec(tmp_path, py("stubborn.py"), timeout=1.0, kill_grace=grace)
    result, lines = await run_collecting(spec)

    assert lines == ["ready"]
    assert result.timed_out
    assert result.signal == signal.SIGKILL
    assert 1.0 + 2 * grace <= result.duration < 1.0 + 2 * grace + 1.0


async def test_flood_without_newlines_is_capped(tmp_path: Path) -> None:
    total = 20 * 1024 * 1024
    cap = 100_000
    log = tmp_path / "logs" / "deep" / "run.log"
    log.parent.mkdir(parents=True)
    log.write_bytes(b"earlier run\n")
    spec = make_spec(tmp_path, py("flood.py", str(total)), log_path=str(log), log_cap_bytes=cap)
    result, lines = await run_collecting(spec)

    assert result.ok
    assert result.output_bytes == total
    assert result.truncated
    content = log.read_bytes()
    assert content.startswith(b"earlier run\n")  # appended, not overwritten
    assert len(content) == len(b"earlier run\n") + cap + len(truncation_marker(cap))
    assert content.endswith(b"[forgebot: output truncated after 100000 bytes]\n")
    assert lines == ["x" * LINE_MAX_BYTES]  # the endless line is passed on once, cut
    assert result.tail == "x" * TAIL_BYTES


async def test_output_limit_stops_a_child_stuck_printing(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, py("flood.py", str(200 * 1024 * 1024)), output_limit_bytes=2_000_000, kill_grace=0.3)
    result, _ = await run_collecting(spec)

    assert result.flooded and not result.ok and not result.timed_out
    assert 2_000_000 < result.output_bytes < 200 * 1024 * 1024
    assert result.exit_code != 0


async def test_log_below_cap_holds_all_output(tmp_path: Path) -> None:
    log = tmp_path / "new" / "run.log"
    result, _ = await run_collecting(make_spec(tmp_path, py("lines.py", "4", "0"), log_path=str(log)))

    assert not result.truncated
    assert log.read_text() == "line 0\nline 1\nline 2\nline 3\n"


async def test_long_lines_are_cut_and_last_partial_line_flushed(tmp_path: Path) -> None:
    result, lines = await run_collecting(make_spec(tmp_path, py("long_line.py")))

    assert result.ok
    assert lines == ["a" * LINE_MAX_BYTES, "after", "last-without-newline"]


async def test_leftover_background_grandchild_is_killed(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    # the grandchild keeps our stdout pipe open, so waiting for EOF alone would hang for 60 s
    result, lines = await run_collecting(make_spec(tmp_path, py("spawn_grandchild.py", str(pidfile), "exit")))

    assert result.ok
    assert lines == ["ready"]
    assert result.duration < 5.0
    assert wait_dead(int(pidfile.read_text()))


async def test_on_line_raising_does_not_break_the_run(tmp_path: Path) -> None:
    seen: list[str] = []

    def on_line(line: str) -> None:
        seen.append(line)
        if line == "line 1":
            raise ValueError("parser bug")

    with capture_logs() as logs:
        result = await run_process(make_spec(tmp_path, py("lines.py", "4", "0")), on_line)

    assert result.ok
    assert seen == ["line 0", "line 1", "line 2", "line 3"]
    failures = [entry for entry in logs if entry["event"] == "on_line callback failed"]
    assert len(failures) == 1 and failures[0]["failures"] == 1
    assert isinstance(failures[0]["exc_info"], ValueError)


async def test_on_start_raising_stops_the_child(tmp_path: Path) -> None:
    started: list[int] = []

    def on_start(pid: int) -> None:
        started.append(pid)
        raise RuntimeError("bookkeeping failed")

    with pytest.raises(RuntimeError, match="bookkeeping failed"):
        await run_process(make_spec(tmp_path, py("stubborn.py"), kill_grace=0.1), on_start=on_start)
    assert not pid_alive(started[0])


async def test_start_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ProcessStartError, match="no-such-program"):
        await run_process(make_spec(tmp_path, ("no-such-program-xyz",)))
    with pytest.raises(ProcessStartError, match="missing-dir"):
        await run_process(make_spec(tmp_path, py("lines.py", "1", "0"), cwd=str(tmp_path / "missing-dir")))


def test_spec_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="argv is empty"):
        make_spec(tmp_path, ())
    with pytest.raises(TypeError, match="shell string"):
        make_spec(tmp_path, "echo hi")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        make_spec(tmp_path, ("true",), timeout=0)


def test_kill_group_now_stops_a_foreign_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    leader = subprocess.Popen(
        py("spawn_grandchild.py", str(pidfile), "hang"), start_new_session=True, stdout=subprocess.DEVNULL
    )
    # in real use the other forgebot process reaps its own child; this thread plays that part
    reaper = threading.Thread(target=leader.wait)
    reaper.start()
    deadline = time.monotonic() + 5.0
    while not pidfile.exists():
        assert time.monotonic() < deadline, "grandchild pid never written"
        time.sleep(0.02)

    assert kill_group_now(leader.pid, grace=0.3)
    reaper.join(timeout=5.0)
    assert leader.returncode == -signal.SIGINT
    assert wait_dead(int(pidfile.read_text()))


def test_kill_group_now_reports_nothing_to_signal(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    gone.wait()

    assert not kill_group_now(gone.pid, grace=0.1)


def test_kill_group_now_refuses_dangerous_targets() -> None:
    for pid in (0, 1, -5, os.getpgrp()):
        with pytest.raises(ValueError, match="refusing"):
            kill_group_now(pid)


def test_pid_alive() -> None:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()

    assert pid_alive(os.getpid())
    assert not pid_alive(done.pid)
    with pytest.raises(ValueError, match="invalid pid"):
        pid_alive(0)


def test_spawn_detached_runs_in_its_own_session_with_our_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGEBOT_WORKER_MARK", "inherited")
    log = tmp_path / "logs" / "worker.log"
    log.parent.mkdir()
    log.write_text("earlier\n")

    pid = spawn_detached(py("show_env.py"), cwd=str(tmp_path), log_path=str(log))

    assert wait_dead(pid)
    earlier, line = log.read_text().splitlines()
    seen = json.loads(line)
    assert earlier == "earlier"
    assert seen["pid"] == seen["pgid"] == pid
    assert seen["env"]["FORGEBOT_WORKER_MARK"] == "inherited"
    assert Path(seen["cwd"]).resolve() == tmp_path.resolve()


def test_spawn_detached_reports_start_errors(tmp_path: Path) -> None:
    log = str(tmp_path / "worker.log")
    with pytest.raises(ProcessStartError, match="no-such-program"):
        spawn_detached(["no-such-program-xyz"], cwd=str(tmp_path), log_path=log)
    with pytest.raises(ProcessStartError, match="missing-dir"):
        spawn_detached(py("show_env.py"), cwd=str(tmp_path / "missing-dir"), log_path=log)
    with pytest.raises(ValueError, match="non-empty"):
        spawn_detached([], cwd=str(tmp_path), log_path=log)
