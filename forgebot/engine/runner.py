"""One attempt from worktree to result: prepare, run the agent, commit, measure, check, record."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import structlog

from forgebot.agents import adapter_for
from forgebot.agents.base import Adapter, AgentUnavailable, EventKind, RunRequest, RunSummary
from forgebot.config import ConfigError, resolve_env
from forgebot.core.models import Attempt, AttemptStatus, IllegalTransition, Price, Task, Usage
from forgebot.core.prompt import build_prompt, format_duration
from forgebot.engine.checks import run_checks
from forgebot.engine.events import EngineEvent, EventBus
from forgebot.engine.events import EventKind as Ev
from forgebot.engine.layout import Layout
from forgebot.engine.processes import ProcessResult, ProcessSpec, run_process, scrubbed_env
from forgebot.engine.workspaces import WorkspaceError, Workspaces
from forgebot.store import Store

log = structlog.get_logger(__name__)

PROGRESS_WRITE_INTERVAL = 2.0  # seconds between stored progress snapshots (other processes watch them)


@dataclass(frozen=True)
class EngineSettings:
    max_parallel: int = 4
    per_repo: int = 4
    per_agent: int = 2
    attempt_timeout: float = 45 * 60
    log_cap_bytes: int = 5_000_000
    max_output_bytes: int = 100_000_000
    kill_grace: float = 3.0
    cancel_poll: float = 1.0


@dataclass
class RunContext:
    """What a runner needs, passed in by the engine."""

    store: Store
    workspaces: Workspaces
    layout: Layout
    settings: EngineSettings
    environ: Mapping[str, str]
    owner: str
    bus: EventBus
    clock: Callable[[], float]

    async def transition(self, attempt_id: int, target: AttemptStatus, **fields: Any) -> Attempt:
        attempt = await asyncio.to_thread(self.store.transition, attempt_id, target, **fields)
        self.bus.publish(EngineEvent(Ev.ATTEMPT_STATUS, attempt.task_id, attempt))
        return attempt


def with_cost(usage: Usage, price: Price | None) -> Usage:
    """The CLI's own figure wins; otherwise tokens times the profile's price; unknown stays None, never 0."""
    if usage.cost_usd is not None or price is None or usage.tokens_in is None or usage.tokens_out is None:
        return usage
    return replace(usage, cost_usd=round(price.cost(usage.tokens_in, usage.tokens_out), 6))


def agent_error(result: ProcessResult, summary: RunSummary) -> str | None:
    if result.flooded:
        return f"agent stopped: it printed more than {result.output_bytes // 1_000_000} MB of output"
    if summary.error:
        return f"agent reported an error: {summary.error}"
    if result.signal is not None:
        return f"agent killed by signal {result.signal}"
    if result.exit_code != 0:
        last = result.tail.strip().splitlines()[-1:] or [""]
        return f"agent exited with code {result.exit_code}" + (f": {last[0][:200]}" if last[0] else "")
    return None


def _fresh_files(home: str, prompt: str, log_path: str) -> str:
    """The agent's private HOME with the prompt in it, and no log left from an earlier run (a retry)."""
    os.makedirs(home, exist_ok=True)
    prompt_file = os.path.join(home, "prompt.md")
    with open(prompt_file, "w", encoding="utf-8") as handle:
        handle.write(prompt)
    with contextlib.suppress(FileNotFoundError):
        os.remove(log_path)
    return prompt_file


class AttemptRunner:
    def __init__(self, ctx: RunContext, task: Task, attempt: Attempt) -> None:
        self.ctx = ctx
        self.task = task
        self.attempt = attempt
        self.summary = RunSummary()
        self._last_write = 0.0
        self._pending: set[asyncio.Future[Any]] = set()
        self.log = log.bind(task=task.id, attempt=attempt.id, agent=attempt.agent)

    async def run(self, stop_status: Callable[[], AttemptStatus]) -> Attempt:
        """`stop_status` tells what a cancellation means (cancelled by a user, or interrupted by shutdown)."""
        try:
            return await self._run()
        except asyncio.CancelledError:
            status = stop_status()
            self.log.info("attempt_stopped", status=str(status))
            # IllegalTransition: it finished on its own in the meantime; the stored result stands.
            with contextlib.suppress(IllegalTransition):
                await self._finish(status, error=f"{status.value} while {self.attempt.status.value}")
            raise

    async def _run(self) -> Attempt:
        ctx, task = self.ctx, self.task
        self.attempt = await ctx.transition(
            self.attempt.id,
            AttemptStatus.PREPARING,
            started_at=ctx.clock(),
            finished_at=None,
            owner=ctx.owner,
        )
        try:
            adapter = adapter_for(self.attempt.profile.executor)
            spec = await self._prepare(adapter)
        except (WorkspaceError, AgentUnavailable, ConfigError, OSError) as problem:
            return await self._finish(AttemptStatus.FAILED, error=str(problem))

        self.attempt = await ctx.transition(self.attempt.id, AttemptStatus.RUNNING, log_path=spec.log_path)
        self.log.info("attempt_running", argv0=spec.argv[0])
        result = await run_process(spec, on_line=self._on_line(adapter), on_start=self._record_pid)
        await self._settle_pending()

        sha = await asyncio.to_thread(
            ctx.workspaces.commit_all, self.attempt.worktree, self._commit_message(), adapter.ignored_paths
        )
        diff = await asyncio.to_thread(ctx.workspaces.diff_stats, self.attempt.worktree, task.base_sha)
        recorded = {
            "exit_code": result.exit_code,
            "session_id": self.summary.session_id,
            "final_message": self.summary.final_message,
            "usage": with_cost(self.summary.usage, self.attempt.profile.price),
            "diff": diff,
            "commit_sha": sha,
            "progress": self.summary.progress,
        }
        if result.timed_out:
            limit = format_duration(ctx.settings.attempt_timeout)
            return await self._finish(AttemptStatus.TIMED_OUT, error=f"timed out after {limit}", **recorded)
        error = agent_error(result, self.summary)
        if error is None and diff.empty:
            error = "no changes"
        if error is not None:
            return await self._finish(AttemptStatus.FAILED, error=error, **recorded)

        self.attempt = await ctx.transition(self.attempt.id, AttemptStatus.CHECKING, **recorded)
        checks = await run_checks(task.checks, self.attempt.worktree, spec.env, spec.log_path, self._record_pid)
        failed = [check.name for check in checks if not check.passed]
        status = AttemptStatus.FAILED if failed else AttemptStatus.SUCCEEDED
        error = f"checks failed: {', '.join(failed)}" if failed else None
        return await self._finish(status, error=error, checks=checks)

    async def _prepare(self, adapter: Adapter) -> ProcessSpec:
        ctx, task, attempt = self.ctx, self.task, self.attempt
        await asyncio.to_thread(ctx.workspaces.prepare, task.repo, attempt.worktree, attempt.branch, task.base_sha)
        home = ctx.layout.attempt_home(task.repo, attempt.id)
        log_path = ctx.layout.attempt_log(task.repo, attempt.id)
        prompt = build_prompt(task.title, task.description, attempt.profile.persona)
        prompt_file = await asyncio.to_thread(_fresh_files, home, prompt, log_path)
        request = RunRequest(attempt.profile, prompt, prompt_file, attempt.worktree, home)
        invocation = adapter.invocation(request)
        allowed = {**resolve_env(attempt.profile.env, ctx.environ), **invocation.env}
        return ProcessSpec(
            argv=invocation.argv,
            cwd=attempt.worktree,
            env=scrubbed_env(home, allowed),
            timeout=ctx.settings.attempt_timeout,
            log_path=log_path,
            log_cap_bytes=ctx.settings.log_cap_bytes,
            stdin_data=invocation.stdin,
            kill_grace=ctx.settings.kill_grace,
            output_limit_bytes=ctx.settings.max_output_bytes,
        )

    def _on_line(self, adapter: Adapter) -> Callable[[str], None]:
        parser = adapter.parser()

        def handle(line: str) -> None:
            changed = False
            for event in parser.feed(line):
                self.summary.add(event)
                changed = changed or event.kind in (EventKind.PROGRESS, EventKind.USAGE)
            if changed:
                self._publish_progress()

        return handle

    def _publish_progress(self) -> None:
        usage = with_cost(self.summary.usage, self.attempt.profile.price)
        self.attempt = replace(self.attempt, progress=self.summary.progress, usage=usage)
        self.ctx.bus.publish(EngineEvent(Ev.ATTEMPT_PROGRESS, self.attempt.task_id, self.attempt))
        now = self.ctx.clock()
        if now - self._last_write >= PROGRESS_WRITE_INTERVAL and not self._pending:
            self._last_write = now
            self._write_later(progress=self.summary.progress, usage=usage)

    def _record_pid(self, pid: int) -> None:
        self._write_later(pid=pid)

    def _write_later(self, **fields: Any) -> None:
        """A small store write from a synchronous callback, without blocking the event loop."""
        future = asyncio.ensure_future(asyncio.to_thread(self.ctx.store.update_attempt, self.attempt.id, **fields))
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)

    async def _settle_pending(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    def _commit_message(self) -> str:
        profile = self.attempt.profile
        model = f" ({profile.model})" if profile.model else ""
        return (
            f"forge: {self.task.title}\n\n"
            f"Attempt {self.attempt.id} of task {self.task.id} by agent {profile.name}{model}, "
            f"executor {profile.executor}.\n"
        )

    async def _finish(self, status: AttemptStatus, **fields: Any) -> Attempt:
        await self._settle_pending()
        self.attempt = await self.ctx.transition(self.attempt.id, status, finished_at=self.ctx.clock(), **fields)
        self.log.info(
            "attempt_finished",
            status=str(status),
            error=self.attempt.error,
            files=self.attempt.diff.files,
            lines=self.attempt.diff.lines,
            cost=self.attempt.usage.cost_usd,
        )
        return self.attempt
