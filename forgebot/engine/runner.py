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
from forgebot.agents.base import Adapter, AgentUnavailable, EventKind, OutputParser, RunRequest, RunSummary, add_usage
from forgebot.agents.pricing import price_for
from forgebot.core.models import Attempt, AttemptStatus, IllegalTransition, Price, Task, Usage
from forgebot.core.prompt import build_prompt, format_duration
from forgebot.engine.checks import run_checks
from forgebot.engine.events import EngineEvent, EventBus
from forgebot.engine.events import EventKind as Ev
from forgebot.engine.launch import Launch, build_launch, read_artifacts
from forgebot.engine.layout import Layout
from forgebot.engine.processes import ProcessResult, run_process
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
    agents_path: tuple[str, ...] = ()  # folders put in front of PATH for agents
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
        # Bound for every line logged while this attempt runs (processes, workspaces, checks, agents).
        ids = {"task": self.task.id, "attempt": self.attempt.id, "agent": self.attempt.agent}
        with structlog.contextvars.bound_contextvars(**ids):
            return await self._run_bound(stop_status)

    async def _run_bound(self, stop_status: Callable[[], AttemptStatus]) -> Attempt:
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
        followup = self.attempt.followup
        previous_usage = self.attempt.usage if followup else Usage()
        self.attempt = await ctx.transition(
            self.attempt.id, AttemptStatus.PREPARING, started_at=ctx.clock(), finished_at=None, owner=ctx.owner
        )
        try:
            adapter = adapter_for(self.attempt.profile.executor)
            launch = await self._prepare(adapter, followup)
        except (WorkspaceError, AgentUnavailable, OSError) as problem:
            return await self._finish(AttemptStatus.FAILED, error=str(problem))

        spec = launch.spec
        self.attempt = await ctx.transition(self.attempt.id, AttemptStatus.RUNNING, log_path=spec.log_path)
        self.log.info("attempt_running", argv0=spec.argv[0], followup=followup is not None)
        parser = adapter.parser()
        result = await run_process(spec, on_line=self._on_line(parser), on_start=self._record_pid)
        artifacts = await asyncio.to_thread(read_artifacts, launch.artifacts)
        for event in parser.finish(result.exit_code, artifacts):
            self.summary.add(event)
        await self._settle_pending()

        message = self._commit_message(followup)
        sha = await asyncio.to_thread(ctx.workspaces.commit_all, self.attempt.worktree, message, adapter.ignored_paths)
        diff = await asyncio.to_thread(ctx.workspaces.diff_stats, self.attempt.worktree, task.base_sha)
        recorded = {
            "exit_code": result.exit_code,
            "session_id": self.summary.session_id or self.attempt.session_id,
            "final_message": self.summary.final_message,
            "usage": self._usage(adapter) if adapter.session_usage else add_usage(previous_usage, self._usage(adapter)),
            "diff": diff,
            "commit_sha": sha or self.attempt.commit_sha,
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

    async def _prepare(self, adapter: Adapter, followup: str | None) -> Launch:
        """A fresh worktree and the task's prompt; or, for a follow-up, the same worktree and session."""
        ctx, task, attempt = self.ctx, self.task, self.attempt
        if followup is None:
            await asyncio.to_thread(ctx.workspaces.prepare, task.repo, attempt.worktree, attempt.branch, task.base_sha)
            prompt, resume = build_prompt(task.title, task.description, attempt.profile.persona), None
        else:
            if not await asyncio.to_thread(os.path.isdir, attempt.worktree):
                raise WorkspaceError(f"the worktree {attempt.worktree} was cleaned up; a follow-up needs it")
            prompt, resume = followup, attempt.session_id
        home = ctx.layout.attempt_home(task.repo, attempt.id)
        prompt_file = os.path.join(home, "prompt.md")
        request = RunRequest(attempt.profile, prompt, prompt_file, attempt.worktree, home, resume, followup is not None)
        settings = ctx.settings
        return await asyncio.to_thread(
            build_launch,
            adapter,
            request,
            environ=ctx.environ,
            agents_path=settings.agents_path,
            log_path=ctx.layout.attempt_log(task.repo, attempt.id),
            timeout=settings.attempt_timeout,
            log_cap_bytes=settings.log_cap_bytes,
            max_output_bytes=settings.max_output_bytes,
            kill_grace=settings.kill_grace,
        )

    def _usage(self, adapter: Adapter) -> Usage:
        profile = self.attempt.profile
        return with_cost(self.summary.usage, profile.price or price_for(profile.model or adapter.default_model))

    def _on_line(self, parser: OutputParser) -> Callable[[str], None]:
        def handle(line: str) -> None:
            changed = False
            for event in parser.feed(line):
                self.summary.add(event)
                changed = changed or event.kind in (EventKind.PROGRESS, EventKind.USAGE)
            if changed:
                self._publish_progress()

        return handle

    def _publish_progress(self) -> None:
        usage = with_cost(self.summary.usage, self.attempt.profile.price)  # list prices come in at the end
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

    def _commit_message(self, followup: str | None) -> str:
        profile = self.attempt.profile
        model = f" ({profile.model})" if profile.model else ""
        subject = (
            f"forge: follow-up: {followup.strip().splitlines()[0][:60]}" if followup else f"forge: {self.task.title}"
        )
        return (
            f"{subject}\n\n"
            f"Attempt {self.attempt.id} of task {self.task.id} by agent {profile.name}{model}, "
            f"executor {profile.executor}.\n"
        )

    async def _finish(self, status: AttemptStatus, **fields: Any) -> Attempt:
        await self._settle_pending()
        self.attempt = await self.ctx.transition(
            self.attempt.id, status, finished_at=self.ctx.clock(), followup=None, **fields
        )
        self.log.info(
            "attempt_finished",
            status=str(status),
            error=self.attempt.error,
            files=self.attempt.diff.files,
            lines=self.attempt.diff.lines,
            cost=self.attempt.usage.cost_usd,
        )
        return self.attempt
