"""The only place in forgebot that starts child processes (agents, checks, anything else).

Every child leads its own process group, so stopping it means stopping everything it spawned.
Output is consumed in chunks as it arrives (a child flooding without newlines must not hurt us),
split into lines for a callback, appended to a capped log, and summarised in a short tail.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from asyncio import FIRST_COMPLETED
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import psutil
import structlog

_LOG = structlog.get_logger(__name__)

LINE_MAX_BYTES = 64 * 1024
TAIL_BYTES = 4096
# After the leader is gone and its group killed, the pipe normally closes at once; a process that
# escaped the group (setsid) could hold it open forever, so we stop waiting after this long.
_DRAIN_AFTER_EXIT = 2.0
_DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
_POLL_INTERVAL = 0.02


class ProcessStartError(OSError):
    """The child could not be started (missing program, bad cwd, no permission)."""


@dataclass(frozen=True)
class ProcessSpec:
    argv: tuple[str, ...]  # never a shell string
    cwd: str
    env: Mapping[str, str]  # the child's complete environment (see scrubbed_env): nothing is inherited
    timeout: float | None = None  # wall-clock seconds
    log_path: str | None = None  # stdout and stderr, interleaved as received, appended here
    log_cap_bytes: int = 5_000_000  # beyond this output is still drained and counted, but not logged
    stdin_data: bytes | None = None  # written to stdin, which is then closed; otherwise stdin is /dev/null
    kill_grace: float = 3.0  # seconds between SIGINT, SIGTERM and SIGKILL
    output_limit_bytes: int | None = None  # past this the child is stopped as broken (stuck printing)

    def __post_init__(self) -> None:
        if isinstance(self.argv, str | bytes):
            raise TypeError(f"argv must be a tuple of arguments, not a shell string: {self.argv!r}")
        if not self.argv:
            raise ValueError("argv is empty: nothing to run")
        if not all(isinstance(arg, str) for arg in self.argv):
            raise TypeError(f"every argv element must be a str: {self.argv!r}")
        if not self.cwd:
            raise ValueError("cwd is empty")
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError(f"timeout must be positive, got {self.timeout}")
        if self.log_cap_bytes < 0:
            raise ValueError(f"log_cap_bytes must be >= 0, got {self.log_cap_bytes}")
        if self.kill_grace < 0:
            raise ValueError(f"kill_grace must be >= 0, got {self.kill_grace}")


@dataclass(frozen=True)
class ProcessResult:
    exit_code: int | None
    signal: int | None
    timed_out: bool
    cancelled: bool
    duration: float
    output_bytes: int
    truncated: bool  # the log file stopped receiving output at log_cap_bytes
    tail: str
    flooded: bool = False  # stopped for passing output_limit_bytes

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.flooded


def truncation_marker(cap: int) -> bytes:
    return b"\n[forgebot: output truncated after %d bytes]\n" % cap


def scrubbed_env(home: str, allowed: Mapping[str, str] = {}) -> dict[str, str]:
    """A fresh environment: PATH (from os.environ, or a sane default), LANG/LC_ALL=C.UTF-8, TERM=dumb,
    HOME=home, TMPDIR (home/tmp, created), USER/LOGNAME if set, plus `allowed` (explicit values, which win).
    Nothing else from os.environ: no tokens, no secrets."""
    if not os.path.isabs(home):
        raise ValueError(f"home must be an absolute path, got {home!r}")
    for name, value in allowed.items():
        if not name or "=" in name or "\0" in name or "\0" in value:
            raise ValueError(f"invalid environment variable {name!r}")
    tmpdir = Path(home, "tmp")
    tmpdir.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH") or _DEFAULT_PATH,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TERM": "dumb",
        "HOME": home,
        "TMPDIR": str(tmpdir),
    }
    env.update({name: os.environ[name] for name in ("USER", "LOGNAME") if name in os.environ})
    env.update(allowed)
    return env


class _LineSplitter:
    """Turns chunks into lines for `on_line`; lines longer than LINE_MAX_BYTES are cut."""

    def __init__(self, on_line: Callable[[str], None] | None) -> None:
        self._on_line = on_line
        self._buf = bytearray()
        self._dropping = False  # inside an over-long line whose head was already passed on
        self.error: Exception | None = None
        self.failures = 0

    def feed(self, data: bytes) -> None:
        if self._on_line is None:
            return
        start = 0
        while (end := data.find(b"\n", start)) >= 0:
            self._add(data, start, end)
            if not self._dropping:
                self._emit()
            self._dropping = False
            start = end + 1
        self._add(data, start, len(data))

    def finish(self) -> None:
        if self._buf:
            self._emit()

    def _add(self, data: bytes, start: int, end: int) -> None:
        if self._dropping:
            return
        room = LINE_MAX_BYTES - len(self._buf)
        if end - start > room:
            self._buf += data[start : start + room]
            self._emit()
            self._dropping = True
        else:
            self._buf += data[start:end]

    def _emit(self) -> None:
        assert self._on_line is not None
        line = self._buf.decode("utf-8", errors="replace")
        self._buf.clear()
        try:
            self._on_line(line)
        except Exception as exc:  # a parser bug must not stop us draining the child
            self.failures += 1
            if self.error is None:
                self.error = exc


class _Output:
    """Counts output, appends it to the capped log, keeps the tail and feeds the line splitter."""

    def __init__(self, log: BinaryIO | None, cap: int, on_line: Callable[[str], None] | None) -> None:
        self._log = log
        self._cap = cap
        self._written = 0
        self._tail = bytearray()
        self.lines = _LineSplitter(on_line)
        self.total = 0
        self.truncated = False

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        self._write(data)
        self._tail += data[-TAIL_BYTES:]
        del self._tail[:-TAIL_BYTES]
        self.lines.feed(data)

    def tail(self) -> str:
        start = 0
        if self.total > len(self._tail):
            # the cut may have split a UTF-8 sequence: skip its continuation bytes
            while start < min(3, len(self._tail)) and self._tail[start] & 0xC0 == 0x80:
                start += 1
        return self._tail[start:].decode("utf-8", errors="replace")

    def _write(self, data: bytes) -> None:
        if self._log is None or self.truncated:
            return
        room = self._cap - self._written
        chunk = data if len(data) <= room else data[:room] + truncation_marker(self._cap)
        self.truncated = len(data) > room
        self._written += min(len(data), room)
        try:
            self._log.write(chunk)
            self._log.flush()  # keep the log current for anyone tailing it
        except OSError as exc:  # e.g. disk full: losing the log must not stop supervision
            _LOG.warning("process log write failed; logging stopped", path=self._log.name, error=str(exc))
            self._log = None


class _Protocol(asyncio.SubprocessProtocol):
    def __init__(self, output: _Output, loop: asyncio.AbstractEventLoop, output_limit: int | None) -> None:
        self._output = output
        self._output_limit = output_limit
        self.exited: asyncio.Future[None] = loop.create_future()
        self.output_closed: asyncio.Future[None] = loop.create_future()
        self.flooded: asyncio.Future[None] = loop.create_future()

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self._output.feed(data)
        if self._output_limit is not None and self._output.total > self._output_limit and not self.flooded.done():
            self.flooded.set_result(None)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 1 and not self.output_closed.done():
            self.output_closed.set_result(None)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)


async def run_process(
    spec: ProcessSpec,
    on_line: Callable[[str], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> ProcessResult:
    """Run `spec` to completion, timeout or cancellation; its whole process group never outlives this call
    (CancelledError is re-raised once the group is stopped)."""
    started = time.monotonic()
    with _open_log(spec.log_path) as log:
        output = _Output(log, spec.log_cap_bytes, on_line)
        protocol = _Protocol(output, asyncio.get_running_loop(), spec.output_limit_bytes)
        transport = await _spawn(spec, protocol)
        try:
            timed_out = await _supervise(spec, transport, protocol, on_start)
        finally:
            transport.close()
        output.lines.finish()
    if output.lines.error is not None:
        _LOG.warning(
            "on_line callback failed",
            program=spec.argv[0],
            failures=output.lines.failures,
            exc_info=output.lines.error,
        )
    returncode = transport.get_returncode()
    return ProcessResult(
        exit_code=returncode if returncode is not None and returncode >= 0 and not timed_out else None,
        signal=-returncode if returncode is not None and returncode < 0 else None,
        timed_out=timed_out,
        cancelled=False,
        duration=time.monotonic() - started,
        output_bytes=output.total,
        truncated=output.truncated,
        tail=output.tail(),
        flooded=protocol.flooded.done(),
    )


def _open_log(path: str | None) -> contextlib.AbstractContextManager[BinaryIO | None]:
    if path is None:
        return contextlib.nullcontext()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return open(path, "ab")


async def _spawn(spec: ProcessSpec, protocol: _Protocol) -> asyncio.SubprocessTransport:
    loop = asyncio.get_running_loop()
    try:
        transport, _ = await loop.subprocess_exec(
            lambda: protocol,
            *spec.argv,
            stdin=subprocess.PIPE if spec.stdin_data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=spec.cwd,
            env=dict(spec.env),
            start_new_session=True,  # the child leads its own group: pgid == pid
        )
    except OSError as exc:
        raise ProcessStartError(f"cannot start {spec.argv[0]!r} in {spec.cwd!r}: {exc}") from exc
    return transport


async def _supervise(
    spec: ProcessSpec,
    transport: asyncio.SubprocessTransport,
    protocol: _Protocol,
    on_start: Callable[[int], None] | None,
) -> bool:
    """Wait for the leader, then leave nothing of its group behind. Returns whether it timed out."""
    pgid = transport.get_pid()
    try:
        if on_start is not None:
            on_start(pgid)
        if spec.stdin_data is not None:
            _feed_stdin(transport, spec.stdin_data)
        await asyncio.wait({protocol.exited, protocol.flooded}, timeout=spec.timeout, return_when=FIRST_COMPLETED)
        exited = protocol.exited.done()
    except BaseException:
        await _stop_group(pgid, protocol.exited, spec.kill_grace)
        raise
    if exited:
        _signal_group(pgid, signal.SIGKILL)  # backgrounded leftovers must not become orphans
    else:
        await _stop_group(pgid, protocol.exited, spec.kill_grace)
    await _settled(protocol.output_closed, _DRAIN_AFTER_EXIT)
    return not exited and not protocol.flooded.done()


def _feed_stdin(transport: asyncio.SubprocessTransport, data: bytes) -> None:
    pipe = transport.get_pipe_transport(0)
    assert isinstance(pipe, asyncio.WriteTransport)
    pipe.write(data)
    pipe.close()  # flushes the buffer first, then the child sees EOF


async def _stop_group(pgid: int, exited: asyncio.Future[None], grace: float) -> None:
    try:
        await _terminate_group(pgid, exited, grace)
    except asyncio.CancelledError:
        # cancelled again while stopping: stop waiting, but still leave nothing running
        _signal_group(pgid, signal.SIGKILL)
        raise


async def _terminate_group(pgid: int, exited: asyncio.Future[None], grace: float) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        if not _signal_group(pgid, sig) or await _settled(exited, grace):
            break
    _signal_group(pgid, signal.SIGKILL)  # the leader may be gone while members that ignored it remain
    await _settled(exited, None)  # the leader is reaped before we return


async def _settled(fut: asyncio.Future[None], within: float | None) -> bool:
    """Whether `fut` finished in `within` seconds; unlike awaiting it, cancellation leaves `fut` intact."""
    done, _ = await asyncio.wait({fut}, timeout=within)
    return bool(done)


def _signal_group(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def kill_group_now(pid: int, grace: float = 3.0) -> bool:
    """Stop the process group led by `pid`, which another process started: SIGINT, SIGTERM, SIGKILL,
    each followed by up to `grace` seconds for the group to vanish. Blocks; returns whether anything
    was signalled. Members its parent has not reaped yet still count as present."""
    _check_group_target(pid)
    signalled = False
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        if not _signal_group(pid, sig):
            return signalled
        signalled = True
        if _wait_group_gone(pid, grace):
            break
    return signalled


def _check_group_target(pid: int) -> None:
    # killpg(0) is our own group and killpg(1) means every process: never let a bad pid reach them
    if pid <= 1:
        raise ValueError(f"refusing to signal process group {pid}: not a valid group leader pid")
    if pid == os.getpgrp():
        raise ValueError(f"refusing to signal process group {pid}: it is forgebot's own group")


def _wait_group_gone(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _signal_group(pgid, 0):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(_POLL_INTERVAL, remaining))
    return True


# Runs in a short-lived intermediate process: it starts the real program in a new session and exits at once,
# so the program is adopted by init rather than staying our child (nothing to reap, no zombie).
_LAUNCHER = """
import os, subprocess, sys
try:
    child = subprocess.Popen(
        sys.argv[1:], stdin=subprocess.DEVNULL, stdout=2, stderr=2, start_new_session=True
    )
except OSError as exc:
    print(exc, flush=True)
    os._exit(1)
print(child.pid, flush=True)
os._exit(0)
"""


def spawn_detached(argv: Sequence[str], cwd: str, log_path: str) -> int:
    """Start a background forgebot worker that outlives this process, in its own session, stdin from
    /dev/null, output appended to `log_path`. It keeps forgebot's own environment: it is forgebot itself and
    needs the config and secrets agents' env references resolve from. Returns its pid; it is not our child."""
    if isinstance(argv, str) or not argv:
        raise ValueError(f"argv must be a non-empty sequence of arguments, got {argv!r}")
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        try:
            launcher = subprocess.run(
                [sys.executable, "-c", _LAUNCHER, *argv],
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                check=False,
            )
        except OSError as exc:
            raise ProcessStartError(f"cannot start {argv[0]!r} in {cwd!r}: {exc}") from exc
    reply = launcher.stdout.decode(errors="replace").strip()
    if launcher.returncode != 0 or not reply.isdigit():
        problem = reply or f"launcher exited with {launcher.returncode}"
        raise ProcessStartError(f"cannot start {argv[0]!r} in {cwd!r}: {problem}")
    return int(reply)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists and is not a zombie (exited, waiting to be reaped)."""
    if pid <= 0:
        raise ValueError(f"invalid pid {pid}")
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
