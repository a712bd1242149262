"""Scheduled jobs: worktree and branch cleanup, the stuck-attempt reaper, and the missed-delivery sweep.

`Jobs` holds the job functions: `forgebot serve` and the CLI's background runner run them on a schedule
(`Scheduler`, APScheduler's AsyncIOScheduler: one instance of a job at a time, missed runs coalesced into one, a
misfire grace), and `forgebot worktree cleanup` / `forgebot jobs run NAME` call the same functions once. Each run
logs one summary line: a short static event name and counts. The blocking work lives in forgebot/engine/
(janitor.py, housekeeping.py) and the GitHub side in forgebot/github/sweeps.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]  # no stubs

from forgebot.config import Schedule
from forgebot.engine.engine import Engine
from forgebot.engine.housekeeping import CleanupReport, EngineError
from forgebot.engine.janitor import Reaper, ReapReport
from forgebot.engine.workspaces import WorkspaceError
from forgebot.github.port import GitHubError
from forgebot.github.sweeps import PullPlan, PullSweep, Redeliverer, RedeliveryReport

log = structlog.get_logger(__name__)
JOB_NAMES = ("cleanup", "reaper", "deliveries")


@dataclass
class GitHubJobs:
    pulls: PullSweep
    redeliverer: Redeliverer | None  # None: forgebot is not a GitHub App, deliveries cannot be listed


class Jobs:
    """The job functions over one engine, and GitHub when the daemon runs them."""

    def __init__(
        self,
        engine: Engine,
        schedule: Schedule,
        github: GitHubJobs | None = None,
        *,
        on_cleanup: Callable[[CleanupReport], None] | None = None,
    ) -> None:
        self.engine = engine
        self.schedule = schedule
        self.github = github
        self.on_cleanup = on_cleanup  # told every cleanup run's report (the daemon's metrics)
        self.reaper = Reaper(engine, slack=schedule.reaper_slack)

    def names(self) -> list[str]:
        """The jobs that can run here, and why the others cannot."""
        return [name for name in JOB_NAMES if self.unavailable(name) is None]

    def unavailable(self, name: str) -> str | None:
        if name not in JOB_NAMES:
            return f"no job named {name!r} (jobs: {', '.join(JOB_NAMES)})"
        if name == "deliveries" and (self.github is None or self.github.redeliverer is None):
            return "missed deliveries can be listed only by a GitHub App (github.app_id), not with a token"
        return None

    async def cleanup(self, *, dry_run: bool, older_than: float | None = None) -> CleanupReport:
        ttl = self.schedule.worktree_ttl if older_than is None else older_than
        plan = await self.github.pulls.plan(dry_run=dry_run) if self.github else PullPlan()
        report = await self.engine.cleanup_worktrees(dry_run=dry_run, older_than=ttl, at_once=plan.task_ids)
        if self.github is not None:
            branches = await self.github.pulls.delete_branches(plan, set(report.removed), dry_run=dry_run)
            report = replace(report, branches_deleted=tuple(branches), branch_errors=plan.errors)
        if self.on_cleanup is not None:
            self.on_cleanup(report)
        return report

    async def reap(self, *, dry_run: bool) -> ReapReport:
        return await self.reaper.run(dry_run=dry_run)

    async def redeliver(self, *, dry_run: bool) -> RedeliveryReport:
        problem = self.unavailable("deliveries")
        if problem or self.github is None or self.github.redeliverer is None:
            raise EngineError(problem or "no GitHub")
        return await self.github.redeliverer.run(dry_run=dry_run)

    async def run(self, name: str, *, dry_run: bool, **options: Any) -> object:
        """Run one job once and log its summary line; a failure is logged (one line) and raised."""
        problem = self.unavailable(name)
        if problem:
            raise EngineError(problem)
        work: dict[str, Callable[[], Awaitable[object]]] = {
            "cleanup": lambda: self.cleanup(dry_run=dry_run, **options),
            "reaper": lambda: self.reap(dry_run=dry_run),
            "deliveries": lambda: self.redeliver(dry_run=dry_run),
        }
        try:
            report = await work[name]()
        except (GitHubError, WorkspaceError, EngineError) as error:
            status = getattr(error, "status", None)
            log.warning("job_failed", job=name, error=type(error).__name__, status=status, dry_run=dry_run)
            raise
        _summary(name, report)
        return report


def _summary(name: str, report: object) -> None:
    if isinstance(report, CleanupReport):
        log.info(
            "cleanup_ran",
            worktrees_removed=len(report.removed),
            worktrees_kept=report.kept,
            bytes_before=report.bytes_before,
            bytes_after=report.bytes_after,
            branches_deleted=len(report.branches_deleted),
            errors=report.branch_errors,
            dry_run=report.dry_run,
        )
    elif isinstance(report, ReapReport):
        log.info(
            "reaper_ran",
            checked=report.checked,
            timed_out=len(report.timed_out),
            interrupted=len(report.interrupted),
            attempts=[*report.timed_out, *report.interrupted],
            dry_run=report.dry_run,
        )
    elif isinstance(report, RedeliveryReport):
        log.info(
            "deliveries_swept",
            listed=report.listed,
            missed=len(report.missed),
            redelivered=report.redelivered,
            errors=report.errors,
            dry_run=report.dry_run,
        )


class Scheduler:
    """Runs `jobs` on their intervals inside the running event loop, until `stop()`."""

    def __init__(self, jobs: Jobs, schedule: Schedule, names: Sequence[str] = JOB_NAMES) -> None:
        self.jobs = jobs
        self.schedule = schedule
        self.names = list(names)
        self.runs: dict[str, int] = {}  # job -> finished runs (successful or not), for health and tests
        self._scheduler: AsyncIOScheduler | None = None
        self._running: set[asyncio.Task[Any]] = set()

    def start(self) -> None:
        if self._scheduler is not None:
            return
        if not self.schedule.enabled:
            log.info("scheduler_disabled")
            return
        intervals = {
            "cleanup": self.schedule.cleanup_interval,
            "reaper": self.schedule.reaper_interval,
            "deliveries": self.schedule.deliveries_interval,
        }
        scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), timezone=UTC)
        now = datetime.now(UTC)
        for name in self.names:
            problem = self.jobs.unavailable(name)
            if problem:
                log.info("job_not_scheduled", job=name, reason=problem)
                continue
            # Deliveries missed while forgebot was down are swept right after a start; the rest after an interval.
            first = now if name == "deliveries" else now + timedelta(seconds=intervals[name])
            scheduler.add_job(
                self._fire,
                "interval",
                args=[name],
                id=name,
                name=name,
                seconds=intervals[name],
                next_run_time=first,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=max(1, round(self.schedule.misfire_grace)),
            )
        scheduler.start()
        self._scheduler = scheduler

    async def _fire(self, name: str) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            await self.jobs.run(name, dry_run=self.schedule.dry_run)
        except (GitHubError, WorkspaceError, EngineError):
            pass  # logged by Jobs.run; the next run tries again
        except Exception:
            log.exception("job_crashed", job=name)
        finally:
            self.runs[name] = self.runs.get(name, 0) + 1
            if task is not None:
                self._running.discard(task)

    async def stop(self, grace: float = 5.0) -> None:
        """No new runs; a running job gets `grace` seconds to finish, then it is cancelled."""
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is None:
            return
        scheduler.pause()
        if self._running:
            await asyncio.wait(list(self._running), timeout=grace)
        scheduler.shutdown(wait=False)  # cancels what is still running
        for task in list(self._running):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._running, return_exceptions=True)
